// The CUDA backend against the CPU: every op, layer and optimizer run on both devices with the
// same seeded inputs, outputs and gradients compared (float32: max |cpu - cuda| <= 1e-5 *
// max |cpu| with TF32 off; float64: 1e-10; integers and bools exactly; NaN and inf positions
// must match). Gradients: backward on both devices with the same upstream gradient, then the
// .grad() of every input and parameter moved back with .to(Device::cpu()).
//
// Fixtures:
//  - Cuda: needs a CUDA device; every test skips without one (SetUp).
//  - NoCuda: checks the behaviour without a device (errors, zero statistics); skips when a
//    device is present.
//  - CudaApi: holds either way (device names, the TF32 switch).
// Building with -DNNKIT_CUDA_TEST_DRY_RUN runs the Cuda tests with the CPU standing in for the
// device (CPU against CPU): a check of the tests' own logic on a machine without a GPU.
#include <gtest/gtest.h>

#include "test_util.h"

#include <cmath>
#include <functional>
#include <memory>
#include <nnkit/nnkit.h>
#include <sstream>
#include <string>
#include <vector>

using namespace nnkit;
namespace nn = nnkit::nn;
namespace F = nnkit::nn::functional;
using nnkit::test_util::error_of;

namespace {

#ifdef NNKIT_CUDA_TEST_DRY_RUN
constexpr bool kDryRun = true;
#else
constexpr bool kDryRun = false;
#endif

// The device under test.
Device dev() { return kDryRun ? Device::cpu() : Device::cuda(); }
const Device kCpu = Device::cpu();
const Dtype kFloatTypes[] = {kFloat32, kFloat64};

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!kDryRun && !cuda::is_available()) GTEST_SKIP() << "no CUDA device: the CUDA backend's tests need a GPU";
    manual_seed(1234);
  }
};

class NoCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::is_available()) GTEST_SKIP() << "a CUDA device is present: these tests check the behaviour without one";
  }
};

double default_tol(Dtype d) { return d == kFloat64 ? 1e-10 : d == kFloat32 ? 1e-5 : 0; }

// `gpu` (a result computed on the device) against `cpu`: same shape and dtype, on the device, and
// max |cpu - gpu| <= tol * max |cpu| over the finite elements (tol < 0: by dtype; integers and
// bools exactly); NaN and inf where the CPU has them. Both undefined is a match.
::testing::AssertionResult close(const Tensor& cpu, const Tensor& gpu, double tol = -1) {
  if (!cpu.defined() || !gpu.defined()) {
    if (cpu.defined() == gpu.defined()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << (cpu.defined() ? "the device's" : "the CPU's") << " tensor is undefined";
  }
  if (gpu.device() != dev()) return ::testing::AssertionFailure() << "result on " << gpu.device() << ", not " << dev();
  if (cpu.sizes() != gpu.sizes())
    return ::testing::AssertionFailure() << "shapes differ: cpu " << cpu.sizes() << ", device " << gpu.sizes();
  if (cpu.dtype() != gpu.dtype())
    return ::testing::AssertionFailure() << "dtypes differ: cpu " << cpu.dtype() << ", device " << gpu.dtype();
  Tensor back = gpu.to(kCpu);
  if (!back.is_cpu()) return ::testing::AssertionFailure() << ".to(Device::cpu()) gave a tensor on " << back.device();
  if (!cpu.is_floating_point()) {
    auto a = cpu.to_vector<int64_t>(), b = back.to_vector<int64_t>();
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i] != b[i])
        return ::testing::AssertionFailure() << "element " << i << ": cpu " << a[i] << ", device " << b[i];
    return ::testing::AssertionSuccess();
  }
  if (tol < 0) tol = default_tol(cpu.dtype());
  auto a = cpu.to_vector<double>(), b = back.to_vector<double>();
  double scale = 0, err = 0;
  size_t worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i]) || std::isinf(a[i]) || std::isinf(b[i])) {
      if (!(std::isnan(a[i]) && std::isnan(b[i])) && a[i] != b[i])
        return ::testing::AssertionFailure() << "element " << i << ": cpu " << a[i] << ", device " << b[i];
      continue;
    }
    scale = std::max(scale, std::abs(a[i]));
    if (std::abs(a[i] - b[i]) > err) err = std::abs(a[i] - b[i]), worst = i;
  }
  if (err > tol * scale)
    return ::testing::AssertionFailure() << "relative error " << err / scale << " > " << tol << " (element " << worst
                                         << ": cpu " << a[worst] << ", device " << b[worst] << ", max |cpu| " << scale
                                         << ")";
  return ::testing::AssertionSuccess();
}

// Independent leaves with the inputs' values and requires_grad, on `device` (an input that
// appears twice gives one leaf used twice).
TensorList copy_inputs(const TensorList& inputs, Device device) {
  TensorList out;
  for (size_t i = 0; i < inputs.size(); ++i) {
    size_t j = 0;
    while (j < i && !(inputs[j].defined() && inputs[j].is_same(inputs[i]))) ++j;
    if (j < i) {
      out.push_back(out[j]);
      continue;
    }
    if (!inputs[i].defined()) {
      out.emplace_back();
      continue;
    }
    Tensor t = inputs[i].detach().to(device).clone();
    if (inputs[i].requires_grad()) t.requires_grad_();
    out.push_back(t);
  }
  return out;
}

// Upstream gradients for `outputs` (seeded random, on the CPU); undefined where no gradient flows.
TensorList upstream(const TensorList& outputs) {
  TensorList g;
  for (auto& o : outputs)
    g.push_back(o.defined() && o.requires_grad() ? randn(o.sizes(), {.dtype = o.dtype()}) : Tensor());
  return g;
}

// Backward from the first output with its upstream gradient (moved to the output's device).
void backward_first(const TensorList& outputs, const TensorList& grads) {
  if (grads.empty() || !grads[0].defined()) return;
  outputs[0].backward(grads[0].to(outputs[0].device()));
}

// Compares the gradients of the inputs that require grad; returns how many have one on the CPU.
int compare_input_grads(const TensorList& inputs, const TensorList& c, const TensorList& g, double tol) {
  int defined = 0;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad()) {
      EXPECT_TRUE(close(c[i].grad(), g[i].grad(), tol)) << "gradient of input " << i;
      defined += c[i].grad().defined();
    }
  return defined;
}

using Op = std::function<Tensor(const TensorList&)>;
#define OP(expr) [](const TensorList& x) -> Tensor { return expr; }

// `op` on the CPU inputs and on copies on the device: outputs, then (when the output requires
// grad) the inputs' gradients after backward with the same upstream gradient.
void check_op(const std::string& name, const Op& op, const TensorList& inputs, double tol = -1) {
  SCOPED_TRACE(name);
  TensorList c = copy_inputs(inputs, kCpu), g = copy_inputs(inputs, dev());
  TensorList oc{op(c)}, og{op(g)};
  ASSERT_TRUE(close(oc[0], og[0], tol)) << "output";
  EXPECT_EQ(oc[0].requires_grad(), og[0].requires_grad());
  TensorList up = upstream(oc);
  backward_first(oc, up);
  backward_first(og, up);
  int with_grad = compare_input_grads(inputs, c, g, tol);
  if (up[0].defined()) {
    EXPECT_GT(with_grad, 0) << "no gradient reached any input: nothing compared";
  }
}

// A module on the CPU against its twin on the device (same parameters and buffers, same mode):
// outputs after `steps` calls, then the gradients of the inputs and of every parameter after a
// backward from the first output, then every buffer (running statistics, counters).
void check_modules(nn::Module& cpu, nn::Module& gpu, const TensorList& inputs, int steps = 1, double tol = -1) {
  cpu.zero_grad();
  gpu.zero_grad();
  for (auto& [n, p] : gpu.named_parameters()) EXPECT_EQ(p.device(), dev()) << "parameter " << n;
  for (auto& [n, b] : gpu.named_buffers()) EXPECT_EQ(b.device(), dev()) << "buffer " << n;
  TensorList c = copy_inputs(inputs, kCpu), g = copy_inputs(inputs, dev());
  TensorList oc, og;
  for (int s = 0; s < steps; ++s) {
    oc = cpu(c);
    og = gpu(g);
  }
  ASSERT_EQ(oc.size(), og.size());
  for (size_t i = 0; i < oc.size(); ++i) ASSERT_TRUE(close(oc[i], og[i], tol)) << "output " << i;
  TensorList up = upstream(oc);
  backward_first(oc, up);
  backward_first(og, up);
  int with_grad = compare_input_grads(inputs, c, g, tol);
  auto pg = gpu.named_parameters();
  for (auto& [n, p] : cpu.named_parameters()) {
    EXPECT_TRUE(close(p.grad(), pg.at(n).grad(), tol)) << "grad of " << n;
    with_grad += p.grad().defined();
  }
  if (up[0].defined()) {
    EXPECT_GT(with_grad, 0) << "no gradient reached any input or parameter: nothing compared";
  }
  auto bg = gpu.named_buffers();
  for (auto& [n, b] : cpu.named_buffers()) EXPECT_TRUE(close(b, bg.at(n), tol)) << "buffer " << n;
}

// `m` (made on the CPU) against a clone moved to the device.
void check_module(const nn::Ptr<>& m, const TensorList& inputs, int steps = 1, double tol = -1) {
  nn::Ptr<> g = m->clone();
  g->to(dev());
  check_modules(*m, *g, inputs, steps, tol);
}

// The same in training and in evaluation mode.
void check_train_eval(const std::string& name, const nn::Ptr<>& m, const TensorList& inputs, int steps = 1) {
  for (bool train : {true, false}) {
    SCOPED_TRACE(name + (train ? " (train)" : " (eval)"));
    m->train(train);
    check_module(m, inputs, steps);
  }
}

Tensor leaf(const Shape& s, Dtype d = kFloat32) { return randn(s, {.dtype = d, .requires_grad = true}); }
// Values in [0.5, 1.5): for log, sqrt, pow and the like.
Tensor pos_leaf(const Shape& s, Dtype d = kFloat32) {
  Tensor t = rand(s, {.dtype = d}) + 0.5;
  t.requires_grad_();
  return t;
}
Tensor longs(const std::vector<int64_t>& v) { return from_vector(v); }

// Feeds a strided (permuted) view to the next layer: module inputs reach the device contiguous.
class Permute : public nn::Module {
 public:
  explicit Permute(Shape dims) : dims_(std::move(dims)) {}
  Tensor forward(const Tensor& x) override { return x.permute(dims_); }

 private:
  Shape dims_;
};
nn::Ptr<> permuted(const Shape& dims, const nn::Ptr<>& m) { return nn::make<nn::Sequential>(nn::make<Permute>(dims), m); }

}  // namespace

// ======================= without a device (runs on machines without a GPU) =======================

TEST_F(NoCuda, FactoriesOnCudaThrowACudaError) {
  const TensorOptions on_cuda{.device = Device::cuda()};
  int i = 0;
  for (auto& f : std::vector<std::function<void()>>{
           [&] { zeros({2}, on_cuda); }, [&] { ones({2, 3}, on_cuda); }, [&] { empty({4}, on_cuda); },
           [&] { full({2}, 1.5, on_cuda); }, [&] { randn({2}, on_cuda); }, [&] { rand({2}, on_cuda); },
           [&] { arange(5, on_cuda); }, [&] { eye(3, std::nullopt, on_cuda); },
           [&] { zeros({2}, {.dtype = kInt64, .device = Device::cuda(1)}); },
           [&] { scalar_tensor(1.0, on_cuda); }, [&] { zeros_like(ones({2}), on_cuda); },
           [&] { randn_like(ones({2}), on_cuda); },
           [&] {
             float v[2] = {1, 2};
             from_blob(v, {2}, kFloat32, std::nullopt, Device::cuda());
           }}) {
    std::string e = error_of(f);
    EXPECT_TRUE(e.starts_with("[cuda]")) << "factory " << i << ": " << e;
    ++i;
  }
}

TEST_F(NoCuda, MovingATensorToCudaThrowsAndChangesNothing) {
  Tensor t = randn({2, 3}, {.requires_grad = true});
  Tensor before = t.detach().clone();
  for (auto& f : std::vector<std::function<void()>>{
           [&] { t.to(Device::cuda(0)); }, [&] { t.to(Device::cuda()); }, [&] { t.cuda(); },
           [&] { t.to(Device::cuda(), kFloat64); }, [&] { t.detach().t().to(Device::cuda()); },
           [&] { ones({3}, {.dtype = kBool}).to(Device::cuda()); }}) {
    std::string e = error_of(f);
    EXPECT_TRUE(e.starts_with("[cuda]")) << e;
  }
  EXPECT_TRUE(t.is_cpu());
  EXPECT_TRUE(equal(t.detach(), before));
}

TEST_F(NoCuda, MovingAModuleToCudaThrowsAndLeavesItOnTheCpu) {
  auto m = nn::make<nn::Sequential>(nn::make<nn::Linear>(3, 4), nn::make<nn::BatchNorm1d>(4));
  StateDict before;
  for (auto& [n, t] : m->state_dict()) before.insert(n, t.clone());
  std::string e = error_of([&] { m->to(Device::cuda()); });
  EXPECT_TRUE(e.starts_with("[cuda]")) << e;
  e = error_of([&] { m->to(Device::cuda(), kFloat64); });
  EXPECT_TRUE(e.starts_with("[cuda]")) << e;
  for (auto& [n, t] : m->state_dict()) {
    EXPECT_TRUE(t.is_cpu()) << n;
    EXPECT_EQ(t.dtype(), before.at(n).dtype()) << n;
    EXPECT_TRUE(equal(t, before.at(n))) << n;
  }
  EXPECT_EQ(m(randn({2, 3})).sizes(), (std::vector<int64_t>{2, 4}));  // still works on the CPU
}

TEST_F(NoCuda, DeviceQueriesReportNoDevice) {
  EXPECT_FALSE(cuda::is_available());
  EXPECT_EQ(cuda::device_count(), 0);
  EXPECT_NO_THROW(cuda::synchronize());
  EXPECT_NO_THROW(cuda::empty_cache());
  EXPECT_NO_THROW(cuda::reset_peak_memory_stats());
  for (int d : {0, 1}) {
    cuda::MemoryStats s = cuda::memory_stats(d);
    EXPECT_EQ(s.allocated, 0);
    EXPECT_EQ(s.reserved, 0);
    EXPECT_EQ(s.peak_allocated, 0);
    EXPECT_EQ(s.num_allocs, 0);
    EXPECT_EQ(s.num_device_allocs, 0);
    EXPECT_EQ(cuda::memory_allocated(d), 0);
    EXPECT_EQ(cuda::memory_reserved(d), 0);
    EXPECT_EQ(cuda::max_memory_allocated(d), 0);
  }
}

// ======================= either way =======================

TEST(CudaApi, DeviceNames) {
  EXPECT_EQ(Device::cuda(1).str(), "cuda:1");
  EXPECT_EQ(Device::cuda().str(), "cuda:0");
  EXPECT_EQ(Device::cpu().str(), "cpu");
  std::ostringstream os;
  os << Device::cuda(3);
  EXPECT_EQ(os.str(), "cuda:3");
  EXPECT_TRUE(Device::cuda().is_cuda());
  EXPECT_FALSE(Device::cuda().is_cpu());
  EXPECT_EQ(Device::cuda(), Device::cuda(0));
  EXPECT_FALSE(Device::cuda(0) == Device::cuda(1));
  EXPECT_FALSE(Device::cuda(0) == Device::cpu());
}

TEST(CudaApi, Tf32IsOffByDefaultAndRoundTrips) {
  EXPECT_FALSE(cuda::allow_tf32());
  cuda::set_allow_tf32(true);
  EXPECT_TRUE(cuda::allow_tf32());
  cuda::set_allow_tf32(false);
  EXPECT_FALSE(cuda::allow_tf32());
}

// ======================= with a device =======================

// ---- moving data ----

TEST_F(Cuda, RoundTripsKeepValuesLayoutsAndDtypes) {
  Tensor x = randn({4, 6});
  std::vector<std::pair<std::string, Tensor>> cases = {
      {"contiguous", x},
      {"transposed", x.t()},
      {"strided slice", x.slice(1, 1, 6, 2)},
      {"expanded", randn({4, 1}).expand({4, 5})},
      {"0-dim", scalar_tensor(2.5)},
      {"empty", zeros({0, 3})},
      {"float64", randn({3, 5}, {.dtype = kFloat64})},
      {"int64", longs({0, -1, 1, (int64_t(1) << 40) + 7, -(int64_t(1) << 53) - 3, INT64_MAX, INT64_MIN})},
      {"bool", randn({3, 4}) > 0.0},
      {"permuted", randn({2, 3, 4}).permute({2, 0, 1})},
  };
  for (auto& [name, t] : cases) {
    SCOPED_TRACE(name);
    Tensor g = t.to(dev());
    ASSERT_TRUE(close(t, g, 0));
    if (!kDryRun) {
      EXPECT_TRUE(g.is_contiguous());
    }
    EXPECT_TRUE(equal(g.to(kCpu), t));
    EXPECT_EQ(g.to_vector<double>(), t.to_vector<double>());  // to_vector reads device memory too
    if (t.numel() == 1) {
      EXPECT_EQ(g.item<double>(), t.item<double>());
    }
    // Device-side layouts back to the CPU: transposed, strided, expanded views of device memory.
    if (t.dim() == 2) {
      EXPECT_TRUE(close(t.t().contiguous(), g.t().contiguous(), 0));
      EXPECT_TRUE(equal(g.t().to(kCpu), t.t()));
      EXPECT_TRUE(equal(g.slice(0, 0, std::nullopt, 2).to(kCpu), t.slice(0, 0, std::nullopt, 2)));
    }
  }
  // Conversions on the way, on the device, and back.
  for (Dtype from : {kFloat32, kFloat64, kInt64, kBool})
    for (Dtype to : {kFloat32, kFloat64, kInt64, kBool}) {
      SCOPED_TRACE(::testing::Message() << from << " -> " << to);
      Tensor t = (randn({3, 4}) * 5).to(from);
      EXPECT_TRUE(close(t.to(to), t.to(dev(), to), 0));
      EXPECT_TRUE(close(t.to(to), t.to(dev()).to(to), 0));
      EXPECT_TRUE(equal(t.to(dev()).to(kCpu, to), t.to(to)));
      EXPECT_TRUE(equal(t.t().to(dev(), to).to(kCpu), t.t().to(to)));
    }
  EXPECT_TRUE(x.to(dev()).to(dev()).device() == dev());
}

TEST_F(Cuda, CopiesOnAndBetweenDevices) {
  Tensor x = randn({4, 5}), y = randn({5, 4});
  Tensor gx = x.to(dev()), gy = y.to(dev());
  EXPECT_TRUE(close(x.clone(), gx.clone(), 0));
  EXPECT_FALSE(gx.clone().is_alias_of(gx));
  EXPECT_TRUE(close(y.t().contiguous(), gy.t().contiguous(), 0));
  // copy_ into a device tensor from the device (strided, broadcast, converting) and from the CPU.
  Tensor c = zeros({4, 5}), g = zeros({4, 5}, {.device = dev()});
  c.copy_(y.t());
  g.copy_(gy.t());
  EXPECT_TRUE(close(c, g, 0));
  c.copy_(randn({5}).mul(0).add(3.0));
  g.copy_(full({5}, 3.0, {.device = dev()}));
  EXPECT_TRUE(close(c, g, 0));
  c.copy_(y.t().to(kFloat64));
  g.copy_(gy.t().to(kFloat64));
  EXPECT_TRUE(close(c, g, 0));
  g.copy_(x);  // CPU -> device
  EXPECT_TRUE(close(x, g, 0));
  Tensor back = zeros({5, 4});
  back.copy_(gx.t());  // device -> CPU, strided
  EXPECT_TRUE(equal(back, x.t()));
  Tensor into_view = zeros({4, 10}, {.device = dev()});
  into_view.slice(1, 0, 10, 2).copy_(gx);  // into a strided view of device memory
  EXPECT_TRUE(equal(into_view.slice(1, 0, 10, 2).to(kCpu), x));
  EXPECT_EQ(into_view.slice(1, 1, 10, 2).abs().sum().item<double>(), 0.0);
  // Gradients flow across devices through to().
  Tensor leaf = randn({3}, {.requires_grad = true});
  (leaf.to(dev()) * 2.0).sum().backward();
  ASSERT_TRUE(leaf.grad().defined());
  EXPECT_TRUE(leaf.grad().is_cpu());
  EXPECT_TRUE(equal(leaf.grad(), full({3}, 2.0)));
  Tensor gleaf = randn({3}, {.device = dev(), .requires_grad = true});
  (gleaf.to(kCpu, kFloat64) * 3.0).sum().backward();
  ASSERT_TRUE(gleaf.grad().defined());
  EXPECT_EQ(gleaf.grad().device(), dev());
  EXPECT_EQ(gleaf.grad().dtype(), kFloat32);
  EXPECT_TRUE(equal(gleaf.grad().to(kCpu), full({3}, 3.0)));
  // A second device, when there is one.
  if (!kDryRun && cuda::device_count() >= 2) {
    Tensor g1 = gx.to(Device::cuda(1));
    EXPECT_EQ(g1.device(), Device::cuda(1));
    EXPECT_TRUE(equal(g1.to(kCpu), x));
    EXPECT_TRUE(equal(g1.to(Device::cuda(0)).to(kCpu), x));
    Tensor prod = g1.matmul(gy.to(Device::cuda(1)));
    EXPECT_EQ(prod.device(), Device::cuda(1));
    EXPECT_TRUE(close(x.matmul(y), prod.to(Device::cuda(0))));
    std::string e = error_of([&] { (void)(g1 + gx); });
    EXPECT_NE(e.find("cuda:0"), std::string::npos) << e;
    EXPECT_NE(e.find("cuda:1"), std::string::npos) << e;
  }
}

TEST_F(Cuda, FactoriesAndQueriesOnTheDevice) {
  const TensorOptions on{.device = dev()};
  EXPECT_TRUE(close(zeros({2, 3}), zeros({2, 3}, on), 0));
  EXPECT_TRUE(close(ones({2, 3}, {.dtype = kInt64}), ones({2, 3}, {.dtype = kInt64, .device = dev()}), 0));
  EXPECT_TRUE(close(full({4}, -2.5), full({4}, -2.5, on), 0));
  EXPECT_TRUE(close(arange(7), arange(7, on), 0));
  EXPECT_TRUE(close(arange(1.0, 3.0, 0.25), arange(1.0, 3.0, 0.25, on)));
  EXPECT_TRUE(close(linspace(-1, 1, 9), linspace(-1, 1, 9, on)));
  EXPECT_TRUE(close(eye(3, 4), eye(3, 4, on), 0));
  EXPECT_TRUE(close(scalar_tensor(1.5), scalar_tensor(1.5, on), 0));
  Tensor g = randn({3, 4}, on);
  EXPECT_EQ(empty_like(g).device(), dev());
  EXPECT_EQ(zeros_like(g).device(), dev());
  EXPECT_EQ(ones_like(g, {.dtype = kFloat64}).device(), dev());
  EXPECT_EQ(randn_like(g).device(), dev());
  // Random factories on the device: right range, reproducible with a seed.
  manual_seed(7);
  Tensor r1 = rand({1000}, on);
  manual_seed(7);
  Tensor r2 = rand({1000}, on);
  EXPECT_EQ(r1.device(), dev());
  EXPECT_TRUE(equal(r1, r2));
  EXPECT_GE(r1.min().item<double>(), 0.0);
  EXPECT_LT(r1.max().item<double>(), 1.0);
  Tensor ri = randint(3, 9, {1000}, on);
  EXPECT_EQ(ri.dtype(), kInt64);
  EXPECT_GE(ri.min().item<int64_t>(), 3);
  EXPECT_LE(ri.max().item<int64_t>(), 8);
  EXPECT_NEAR(randn({20000}, on).mean().item<double>(), 0.0, 0.05);
  // Whole-tensor comparisons and printing work on device tensors.
  EXPECT_TRUE(equal(g, g.clone()));
  EXPECT_TRUE(allclose(g, g + 1e-9));
  EXPECT_FALSE(g.to_string().empty());
  EXPECT_EQ(g.to_vector<float>().size(), 12u);
}

// ---- elementwise ----

TEST_F(Cuda, UnaryOps) {
  struct Unary {
    const char* name;
    Tensor (*fn)(const Tensor&);
    bool positive;  // needs inputs > 0
  };
  const Unary ops[] = {
      {"neg", [](const Tensor& t) { return t.neg(); }, false},
      {"abs", [](const Tensor& t) { return t.abs(); }, false},
      {"exp", [](const Tensor& t) { return t.exp(); }, false},
      {"log", [](const Tensor& t) { return t.log(); }, true},
      {"log1p", [](const Tensor& t) { return log1p(t); }, true},
      {"log1p near 0", [](const Tensor& t) { return log1p(t * 1e-4); }, false},
      {"expm1", [](const Tensor& t) { return expm1(t); }, false},
      {"expm1 near 0", [](const Tensor& t) { return expm1(t * 1e-4); }, false},
      {"sqrt", [](const Tensor& t) { return t.sqrt(); }, true},
      {"rsqrt", [](const Tensor& t) { return t.rsqrt(); }, true},
      {"sin", [](const Tensor& t) { return t.sin(); }, false},
      {"cos", [](const Tensor& t) { return t.cos(); }, false},
      {"tanh", [](const Tensor& t) { return t.tanh(); }, false},
      {"sigmoid", [](const Tensor& t) { return t.sigmoid(); }, false},
      {"sigmoid large", [](const Tensor& t) { return (t * 50.0).sigmoid(); }, false},
      {"relu", [](const Tensor& t) { return t.relu(); }, false},
      {"gelu", [](const Tensor& t) { return t.gelu(); }, false},
      {"gelu tanh", [](const Tensor& t) { return t.gelu("tanh"); }, false},
      {"erf", [](const Tensor& t) { return t.erf(); }, false},
      {"square", [](const Tensor& t) { return t.square(); }, false},
      {"reciprocal", [](const Tensor& t) { return t.reciprocal(); }, true},
      {"sign", [](const Tensor& t) { return t.sign(); }, false},
      {"silu", [](const Tensor& t) { return F::silu(t); }, false},
      {"leaky_relu", [](const Tensor& t) { return F::leaky_relu(t, 0.2); }, false},
  };
  for (Dtype dt : kFloatTypes)
    for (const Unary& u : ops) {
      Tensor x = u.positive ? pos_leaf({3, 4, 5}, dt) : leaf({3, 4, 5}, dt);
      auto fn = u.fn;
      std::string name = std::string(u.name) + " " + std::string(dtype_name(dt));
      check_op(name, [fn](const TensorList& v) { return fn(v[0]); }, {x});
      check_op(name + " (strided input)", [fn](const TensorList& v) { return fn(v[0].transpose(0, 2)); }, {x});
    }
  // Integer inputs where they are defined.
  Tensor i = randint(-5, 6, {4, 5});
  check_op("neg int64", OP(x[0].neg()), {i});
  check_op("abs int64", OP(x[0].abs()), {i});
  check_op("sign int64", OP(x[0].sign()), {i});
  check_op("square int64", OP(x[0].square()), {i});
  check_op("logical_not", OP(x[0].logical_not()), {i > 0.0});
  check_op("logical_not of floats", OP(x[0].logical_not()), {randint(0, 2, {7}).to(kFloat32)});
}

TEST_F(Cuda, BinaryOpsWithBroadcastingAndScalars) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    const std::vector<std::pair<Shape, Shape>> shapes = {
        {{3, 4, 5}, {3, 4, 5}}, {{3, 1, 5}, {4, 1}}, {{}, {3, 4}}, {{2, 3}, {}}, {{1}, {6}}, {{5, 1, 1}, {1, 4, 3}}};
    for (auto& [sa, sb] : shapes) {
      Tensor a = leaf(sa, dt), b = leaf(sb, dt), pa = pos_leaf(sa, dt), pb = pos_leaf(sb, dt);
      check_op("add", OP(x[0] + x[1]), {a, b});
      check_op("add alpha", OP(add(x[0], x[1], -2.5)), {a, b});
      check_op("sub", OP(x[0] - x[1]), {a, b});
      check_op("sub alpha", OP(x[0].sub(x[1], 0.5)), {a, b});
      check_op("mul", OP(x[0] * x[1]), {a, b});
      check_op("div", OP(x[0] / x[1]), {a, pb});
      check_op("pow", OP(pow(x[0], x[1])), {pa, b});
      check_op("maximum", OP(maximum(x[0], x[1])), {a, b});
      check_op("minimum", OP(minimum(x[0], x[1])), {a, b});
      check_op("where", OP(where(x[0] > x[1], x[0], x[1] * 2.0)), {a, b});
      check_op("where scalar a", OP(where(x[0] > 0.0, 1.5, x[1])), {a, b});
      check_op("where scalar b", OP(where(x[1] < 0.0, x[0], -3.0)), {a, b});
    }
    Tensor a = leaf({4, 5}, dt), p = pos_leaf({4, 5}, dt);
    check_op("same input twice", OP(x[0] * x[0] + x[0]), {a});
    check_op("transposed operands", OP(x[0].t() * x[1].t() + x[0].t()), {a, leaf({4, 5}, dt)});
    check_op("add scalar", OP(x[0] + 2.5), {a});
    check_op("radd scalar", OP(2.5 + x[0]), {a});
    check_op("sub scalar", OP(x[0] - 1.5), {a});
    check_op("rsub scalar", OP(1.5 - x[0]), {a});
    check_op("mul scalar", OP(x[0] * 3.0), {a});
    check_op("div scalar", OP(x[0] / 4.0), {a});
    check_op("rdiv scalar", OP(2.0 / x[0]), {p});
    check_op("pow 2", OP(x[0].pow(2.0)), {a});
    check_op("pow 3", OP(x[0].pow(3.0)), {a});
    check_op("pow 0.5", OP(x[0].pow(0.5)), {p});
    check_op("pow -1.5", OP(x[0].pow(-1.5)), {p});
    check_op("pow 0", OP(x[0].pow(0.0)), {a});
    check_op("clamp", OP(x[0].clamp(-0.5, 0.5)), {a});
    check_op("clamp min", OP(clamp(x[0], -0.2)), {a});
    check_op("clamp max", OP(x[0].clamp(std::nullopt, 0.3)), {a});
  }
  // Type promotion across dtypes (gradients come back in each input's dtype).
  check_op("float32 + float64", OP(x[0] + x[1]), {leaf({3, 4}), leaf({4}, kFloat64)});
  check_op("float64 * float32", OP(x[0] * x[1]), {leaf({3, 4}, kFloat64), leaf({3, 1})});
  check_op("int64 + float32", OP(x[0] + x[1]), {randint(-3, 4, {3, 4}), leaf({3, 4})});
  check_op("int64 * float64", OP(x[0] * x[1]), {randint(-3, 4, {4}), leaf({2, 4}, kFloat64)});
  // Integer and bool arithmetic.
  Tensor i = randint(-50, 50, {4, 5}), j = randint(1, 9, {5});
  check_op("int64 add", OP(x[0] + x[1]), {i, j});
  check_op("int64 sub", OP(x[0] - x[1]), {i, j});
  check_op("int64 mul", OP(x[0] * x[1]), {i, j});
  check_op("int64 div", OP(x[0] / x[1]), {i, j});
  check_op("int64 add scalar", OP(x[0] + 3.0), {i});
  check_op("int64 mul scalar", OP(x[0] * 2.0), {i});
  check_op("int64 maximum", OP(maximum(x[0], x[1])), {i, j});
  check_op("int64 minimum", OP(minimum(x[0], x[1])), {i, j});
  check_op("int64 clamp", OP(x[0].clamp(-10, 10)), {i});
  check_op("int64 where", OP(where(x[0] > 0.0, x[0], x[1])), {i, j});
  check_op("bool + int64", OP(x[0] + x[1]), {i > 0.0, j});
  check_op("bool where", OP(where(x[0], x[1], x[2])), {randn({4, 1}) > 0.0, i > 5.0, i < 0.0});
}

TEST_F(Cuda, Comparisons) {
  for (Dtype dt : {kFloat32, kFloat64, kInt64}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor a = (randn({4, 5}) * 3).to(dt), b = (randn({5}) * 3).to(dt);
    // Some equal elements, so eq/le/ge have both outcomes.
    Tensor c = a.clone();
    c.slice(0, 0, 2).copy_(b.expand({2, 5}));
    for (auto& [l, r] : std::vector<std::pair<Tensor, Tensor>>{{a, b}, {c, b}, {c.t(), b.view({5, 1})}}) {
      check_op("eq", OP(x[0] == x[1]), {l, r});
      check_op("ne", OP(x[0] != x[1]), {l, r});
      check_op("lt", OP(x[0] < x[1]), {l, r});
      check_op("le", OP(x[0] <= x[1]), {l, r});
      check_op("gt", OP(x[0] > x[1]), {l, r});
      check_op("ge", OP(x[0] >= x[1]), {l, r});
    }
    check_op("eq scalar", OP(x[0] == 1.0), {a.clamp(-1, 1)});
    check_op("ne scalar", OP(x[0] != 0.0), {a.clamp(0, 1)});
    check_op("lt scalar", OP(x[0] < 0.5), {a});
    check_op("le scalar", OP(x[0] <= 0.0), {a});
    check_op("gt scalar", OP(x[0] > -0.5), {a});
    check_op("ge scalar", OP(x[0] >= 1.0), {a});
  }
  check_op("float32 vs float64", OP(x[0] < x[1]), {randn({6}), randn({6}, {.dtype = kFloat64})});
  check_op("int64 vs float32", OP(x[0] >= x[1]), {randint(-2, 3, {6}), randn({6})});
  check_op("bool eq", OP(x[0] == x[1]), {randn({6}) > 0.0, randn({6}) > 0.0});
}

TEST_F(Cuda, NanAndInfinity) {
  Tensor x = randn({4, 6});
  x.select(0, 1).select(0, 2).fill_(NAN);
  x.select(0, 2).select(0, 0).fill_(INFINITY);
  x.select(0, 3).select(0, 5).fill_(-INFINITY);
  x.requires_grad_();
  check_op("relu", OP(x[0].relu()), {x});
  check_op("clamp", OP(x[0].clamp(-1, 1)), {x});
  check_op("maximum", OP(maximum(x[0], x[1])), {x, leaf({6})});
  check_op("minimum", OP(minimum(x[1], x[0])), {x, leaf({6})});
  check_op("sigmoid", OP(x[0].sigmoid()), {x});
  check_op("tanh", OP(x[0].tanh()), {x});
  check_op("exp", OP(x[0].exp()), {x});
  check_op("sign", OP(x[0].sign()), {x});
  check_op("mul by 0", OP(x[0] * 0.0), {x});
  check_op("eq self", OP(x[0] == x[0]), {x});
  check_op("ne self", OP(x[0] != x[0]), {x});
  check_op("log of negatives", OP(x[0].log()), {leaf({3, 3})});
  check_op("sqrt of negatives", OP(x[0].sqrt()), {leaf({3, 3})});
  check_op("div by zero", OP(x[0] / x[1]), {leaf({5}), zeros({5})});
  check_op("reciprocal of zero", OP(x[0].reciprocal()), {zeros({2})});
}

TEST_F(Cuda, InPlaceOpsAndVersionCounter) {
  using InPlace = std::function<void(Tensor&, const Tensor&)>;
  const std::vector<std::pair<std::string, InPlace>> ops = {
      {"add_", [](Tensor& s, const Tensor& o) { s.add_(o); }},
      {"add_ alpha", [](Tensor& s, const Tensor& o) { s.add_(o, -0.5); }},
      {"add_ scalar", [](Tensor& s, const Tensor&) { s.add_(1.5); }},
      {"sub_", [](Tensor& s, const Tensor& o) { s.sub_(o); }},
      {"sub_ scalar", [](Tensor& s, const Tensor&) { s.sub_(2.0); }},
      {"mul_", [](Tensor& s, const Tensor& o) { s.mul_(o); }},
      {"mul_ scalar", [](Tensor& s, const Tensor&) { s.mul_(-3.0); }},
      {"div_", [](Tensor& s, const Tensor& o) { s.div_(o.abs() + 0.5); }},
      {"div_ scalar", [](Tensor& s, const Tensor&) { s.div_(4.0); }},
      {"clamp_", [](Tensor& s, const Tensor&) { s.clamp_(-0.3, 0.4); }},
      {"clamp_ min", [](Tensor& s, const Tensor&) { s.clamp_(0.1); }},
      {"relu_", [](Tensor& s, const Tensor&) { s.relu_(); }},
      {"fill_", [](Tensor& s, const Tensor&) { s.fill_(0.25); }},
      {"zero_", [](Tensor& s, const Tensor&) { s.zero_(); }},
      {"copy_", [](Tensor& s, const Tensor& o) { s.copy_(o); }},
      {"+=", [](Tensor& s, const Tensor& o) { s += o; }},
      {"-=", [](Tensor& s, const Tensor&) { s -= 1.0; }},
      {"*=", [](Tensor& s, const Tensor& o) { s *= o; }},
      {"/=", [](Tensor& s, const Tensor&) { s /= 8.0; }},
  };
  for (Dtype dt : kFloatTypes)
    for (auto& [name, op] : ops) {
      SCOPED_TRACE(name + " " + std::string(dtype_name(dt)));
      Tensor x = randn({4, 5}, {.dtype = dt}), o = randn({5}, {.dtype = dt});
      Tensor c = x.clone(), g = x.to(dev()), go = o.to(dev());
      uint32_t vc = c.version(), vg = g.version();
      op(c, o);
      op(g, go);
      EXPECT_TRUE(close(c, g));
      EXPECT_GT(c.version(), vc);
      EXPECT_EQ(g.version() - vg, c.version() - vc);
      // On a strided view: the base sees the change, and shares the version counter.
      Tensor cb = x.clone(), gb = x.to(dev());
      Tensor cv = cb.t().slice(0, 0, 5, 2), gv = gb.t().slice(0, 0, 5, 2);
      Tensor cov = o.slice(0, 0, 3).view({3, 1}), gov = cov.to(dev());
      uint32_t vbase = gb.version();
      op(cv, cov);
      op(gv, gov);
      EXPECT_TRUE(close(cb, gb));
      EXPECT_GT(gb.version(), vbase);
    }
  // In place on int64.
  Tensor i = randint(-9, 10, {3, 4});
  Tensor ci = i.clone(), gi = i.to(dev());
  ci.add_(ci);
  gi.add_(gi);
  ci.mul_(3.0);
  gi.mul_(3.0);
  ci.clamp_(-20, 20);
  gi.clamp_(-20, 20);
  EXPECT_TRUE(close(ci, gi));
  // Autograd through in-place ops, and the version check on saved tensors.
  check_op("mul_ in a graph", [](const TensorList& x) {
    Tensor y = x[0] * 1.0;
    y.mul_(x[1]);
    y.add_(2.0);
    return y;
  }, {leaf({3, 4}), leaf({4})});
  check_op("relu_ in a graph", [](const TensorList& x) {
    Tensor y = x[0] + 0.0;
    y.relu_();
    return y * x[0];
  }, {leaf({5})});
  Tensor a = randn({3}, {.device = dev(), .requires_grad = true});
  Tensor e = a.exp();  // saves its output
  {
    NoGradGuard ng;
    e.add_(1.0);
  }
  EXPECT_NE(error_of([&] { e.sum().backward(); }), "<no error>");
  EXPECT_NE(error_of([&] { a.add_(1.0); }), "<no error>");  // a leaf that requires grad
}

// ---- reductions and softmax ----

TEST_F(Cuda, Reductions) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = leaf({4, 5, 6}, dt);
    check_op("sum", OP(x[0].sum()), {x});
    check_op("mean", OP(x[0].mean()), {x});
    check_op("var", OP(x[0].var()), {x});
    check_op("std", OP(x[0].std(0.0)), {x});
    check_op("max", OP(x[0].max()), {x});
    check_op("min", OP(x[0].min()), {x});
    check_op("argmax", OP(x[0].argmax()), {x});
    check_op("argmin", OP(x[0].argmin()), {x});
    for (const Shape& dims : {Shape{0}, Shape{1}, Shape{-1}, Shape{0, 2}, Shape{2, 1}, Shape{0, 1, 2}})
      for (bool keep : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "dims " << dims << (keep ? " keepdim" : ""));
        check_op("sum dims", [dims, keep](const TensorList& v) { return v[0].sum(dims, keep); }, {x});
        check_op("mean dims", [dims, keep](const TensorList& v) { return mean(v[0], dims, keep); }, {x});
        check_op("var dims", [dims, keep](const TensorList& v) { return v[0].var(dims, 1, keep); }, {x});
        check_op("var dims c0", [dims, keep](const TensorList& v) { return var(v[0], dims, 0, keep); }, {x});
        check_op("std dims", [dims, keep](const TensorList& v) { return v[0].std(dims, 1, keep); }, {x});
        check_op("amax", [dims, keep](const TensorList& v) { return v[0].amax(dims, keep); }, {x});
        check_op("amin", [dims, keep](const TensorList& v) { return amin(v[0], dims, keep); }, {x});
        check_op("sum of transposed", [dims, keep](const TensorList& v) { return v[0].transpose(0, 2).sum(dims, keep); },
                 {x});
      }
    for (int64_t d : {0, 1, 2, -1})
      for (bool keep : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "dim " << d << (keep ? " keepdim" : ""));
        check_op("max dim values", [d, keep](const TensorList& v) { return std::get<0>(v[0].max(d, keep)); }, {x});
        check_op("max dim indices", [d, keep](const TensorList& v) { return std::get<1>(v[0].max(d, keep)); }, {x});
        check_op("min dim values", [d, keep](const TensorList& v) { return std::get<0>(v[0].min(d, keep)); }, {x});
        check_op("min dim indices", [d, keep](const TensorList& v) { return std::get<1>(v[0].min(d, keep)); }, {x});
        check_op("argmax dim", [d, keep](const TensorList& v) { return v[0].argmax(d, keep); }, {x});
        check_op("argmin dim", [d, keep](const TensorList& v) { return v[0].argmin(d, keep); }, {x});
      }
  }
  // Ties: indices are the first occurrence; amax/amin spread the gradient over the ties.
  Tensor ties = randint(0, 3, {5, 8}).to(kFloat32);
  ties.requires_grad_();
  check_op("max dim with ties", OP(std::get<0>(x[0].max(1))), {ties});
  check_op("max indices with ties", OP(std::get<1>(x[0].max(1))), {ties});
  check_op("argmin with ties", OP(x[0].argmin(0)), {ties});
  check_op("argmax all with ties", OP(x[0].argmax()), {ties});
  check_op("amax with ties", OP(x[0].amax({1})), {ties});
  check_op("amin with ties", OP(x[0].amin({0, 1})), {ties});
  check_op("max all with ties", OP(x[0].max()), {ties});
  // Large reductions (many blocks on the device) and long rows.
  check_op("sum of 2^20", OP(x[0].sum()), {leaf({1 << 20})});
  check_op("mean of long rows", OP(x[0].mean({1})), {leaf({3, 100000})});
  check_op("var of long rows", OP(x[0].var({1})), {leaf({3, 100000})});
  check_op("amax of long rows", OP(x[0].amax({1})), {leaf({3, 100000})});
  check_op("argmax of long rows", OP(x[0].argmax(1)), {randn({3, 100000})});
  check_op("sum over the outer dim of a tall tensor", OP(x[0].sum({0})), {leaf({50000, 3})});
  // Integers, bools, empty tensors.
  Tensor i = randint(-100, 100, {6, 7});
  check_op("int64 sum", OP(x[0].sum()), {i});
  check_op("int64 sum dim", OP(x[0].sum({1})), {i});
  check_op("int64 amax", OP(x[0].amax({0})), {i});
  check_op("int64 max dim", OP(std::get<0>(x[0].max(1))), {i});
  check_op("int64 argmin", OP(x[0].argmin(0)), {i});
  check_op("bool sum", OP(x[0].sum()), {i > 0.0});
  check_op("bool sum dim", OP(x[0].sum({0})), {i > 0.0});
  check_op("sum of one element", OP(x[0].sum({0})), {leaf({1, 4})});
  check_op("var of one element", OP(x[0].var({0})), {leaf({1, 4})});
}

// Separate from Reductions: on the CPU these currently die with SIGFPE (a division by zero in
// the reduction loop), which would take every other reduction check down with them.
TEST_F(Cuda, ReductionsOfEmptyTensors) {
  check_op("empty sum", OP(x[0].sum()), {zeros({0, 3})});
  check_op("empty sum dim 0", OP(x[0].sum({0})), {zeros({0, 3})});
  check_op("empty sum dim 1", OP(x[0].sum({1})), {leaf({0, 3})});
  check_op("empty mean dim", OP(x[0].mean({1})), {zeros({2, 0})});
  check_op("empty int64 sum", OP(x[0].sum()), {zeros({0}, {.dtype = kInt64})});
  check_op("amax over a non-empty dim", OP(x[0].amax({1})), {zeros({0, 3})});
}

TEST_F(Cuda, ReductionsWithNan) {
  Tensor x = randn({4, 6});
  x.select(0, 1).select(0, 2).fill_(NAN);
  x.select(0, 3).select(0, 0).fill_(NAN);
  x.select(0, 3).select(0, 4).fill_(NAN);
  x.requires_grad_();
  check_op("sum", OP(x[0].sum()), {x});
  check_op("sum dim", OP(x[0].sum({1})), {x});
  check_op("mean dim", OP(x[0].mean({0})), {x});
  check_op("var dim", OP(x[0].var({1})), {x});
  check_op("max", OP(x[0].max()), {x});
  check_op("min", OP(x[0].min()), {x});
  check_op("max dim", OP(std::get<0>(x[0].max(1))), {x});
  check_op("max dim indices", OP(std::get<1>(x[0].max(1))), {x});
  check_op("min dim indices", OP(std::get<1>(x[0].min(0))), {x});
  check_op("argmax", OP(x[0].argmax()), {x});
  check_op("argmin", OP(x[0].argmin()), {x});
  check_op("argmax dim", OP(x[0].argmax(1)), {x});
  check_op("amax", OP(x[0].amax({1})), {x});
  check_op("amin", OP(x[0].amin({0})), {x});
  check_op("softmax", OP(x[0].softmax(1)), {x});
  check_op("log_softmax", OP(x[0].log_softmax(0)), {x});
}

TEST_F(Cuda, SoftmaxAndLogSoftmax) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = leaf({4, 5, 6}, dt);
    for (int64_t d : {0, 1, 2, -1}) {
      SCOPED_TRACE(::testing::Message() << "dim " << d);
      check_op("softmax", [d](const TensorList& v) { return v[0].softmax(d); }, {x});
      check_op("log_softmax", [d](const TensorList& v) { return v[0].log_softmax(d); }, {x});
      check_op("softmax of transposed", [d](const TensorList& v) { return v[0].transpose(0, 2).softmax(d); }, {x});
      check_op("softmax of large values", [d](const TensorList& v) { return (v[0] * 1000.0).softmax(d); }, {x});
      check_op("log_softmax of large values", [d](const TensorList& v) { return (v[0] * 1000.0).log_softmax(d); },
               {x});
    }
    check_op("softmax 1-D", OP(x[0].softmax(0)), {leaf({7}, dt)});
    check_op("softmax 0-dim", OP(x[0].softmax(0)), {leaf({}, dt)});
    check_op("softmax of long rows", OP(x[0].softmax(1)), {leaf({3, 50000}, dt)});
    check_op("log_softmax of long rows", OP(x[0].log_softmax(1)), {leaf({3, 50000}, dt)});
  }
  // Masked entries (-inf), as attention uses them; an all-masked row gives NaN on both devices.
  Tensor m = leaf({3, 5});
  Tensor mask = zeros({3, 5});
  mask.select(0, 0).slice(0, 3).fill_(-INFINITY);
  mask.select(0, 2).fill_(-INFINITY);
  check_op("softmax with -inf", OP((x[0] + x[1]).softmax(1)), {m, mask});
  check_op("log_softmax with -inf", OP((x[0] + x[1]).log_softmax(1)), {m, mask});
}

// ---- linear algebra, joins, indexing ----

TEST_F(Cuda, MatrixProducts) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    const std::vector<std::pair<Shape, Shape>> shapes = {
        {{5}, {5}},          {{5}, {5, 3}},          {{4, 5}, {5}},           {{4, 5}, {5, 3}},
        {{2, 4, 5}, {5, 3}}, {{4, 5}, {2, 5, 3}},    {{2, 1, 4, 5}, {3, 5, 6}}, {{3, 4, 5}, {5}},
        {{1, 1}, {1, 1}},    {{64, 128}, {128, 96}}, {{7, 0}, {0, 3}}};
    for (auto& [sa, sb] : shapes) {
      SCOPED_TRACE(::testing::Message() << sa << " @ " << sb);
      check_op("matmul", OP(matmul(x[0], x[1])), {leaf(sa, dt), leaf(sb, dt)});
    }
    Tensor a = leaf({5, 4}, dt), b = leaf({3, 5}, dt), c = leaf({4, 5}, dt), d = leaf({5, 3}, dt);
    check_op("mm", OP(x[0].mm(x[1])), {c, d});
    check_op("mm a^T", OP(x[0].t().mm(x[1])), {a, d});
    check_op("mm b^T", OP(x[0].mm(x[1].t())), {c, b});
    check_op("mm a^T b^T", OP(x[0].t().mm(x[1].t())), {a, b});
    check_op("mm strided", OP(x[0].slice(1, 0, 10, 2).mm(x[1].slice(0, 0, 10, 2))), {leaf({4, 10}, dt), leaf({10, 3}, dt)});
    check_op("matmul a^T", OP(matmul(x[0].t(), x[1])), {a, d});
    check_op("matmul expanded", OP(matmul(x[0].expand({3, 4, 5}), x[1])), {c, leaf({3, 5, 2}, dt)});
    Tensor p = leaf({3, 4, 5}, dt), q = leaf({3, 5, 6}, dt), qt = leaf({3, 6, 5}, dt), pt = leaf({3, 5, 4}, dt);
    check_op("bmm", OP(x[0].bmm(x[1])), {p, q});
    check_op("bmm b^T", OP(x[0].bmm(x[1].transpose(1, 2))), {p, qt});
    check_op("bmm a^T", OP(x[0].transpose(1, 2).bmm(x[1])), {pt, q});
    check_op("bmm permuted", OP(x[0].permute({1, 0, 2}).bmm(x[1])), {leaf({4, 3, 5}, dt), q});
    check_op("batched matmul b^T", OP(matmul(x[0], x[1].transpose(-1, -2))), {leaf({2, 3, 4, 5}, dt), leaf({3, 6, 5}, dt)});
  }
  // Larger float32 products: only right with TF32 off (the default).
  ASSERT_FALSE(cuda::allow_tf32());
  check_op("mm 256", OP(x[0].mm(x[1])), {leaf({256, 256}), leaf({256, 256})});
  check_op("bmm 8x128", OP(x[0].bmm(x[1])), {leaf({8, 128, 128}), leaf({8, 128, 128})});
}

TEST_F(Cuda, Tf32IsOffByDefaultAndOnlyLoosensFloat32Products) {
  EXPECT_FALSE(cuda::allow_tf32());
  Tensor a = randn({512, 512}), b = randn({512, 512});
  Tensor ref = a.mm(b);
  Tensor w = randn({16, 8, 3, 3}), img = randn({4, 8, 32, 32});
  Tensor conv_ref = F::conv2d(img, w, {}, {.padding = 1});
  EXPECT_TRUE(close(ref, a.to(dev()).mm(b.to(dev()))));
  EXPECT_TRUE(close(conv_ref, F::conv2d(img.to(dev()), w.to(dev()), {}, {.padding = 1})));
  cuda::set_allow_tf32(true);
  Tensor fast = a.to(dev()).mm(b.to(dev()));
  Tensor fast_conv = F::conv2d(img.to(dev()), w.to(dev()), {}, {.padding = 1});
  Tensor f64 = a.to(dev(), kFloat64).mm(b.to(dev(), kFloat64));  // float64 never uses TF32
  cuda::set_allow_tf32(false);
  EXPECT_TRUE(close(ref, fast, 5e-3));  // TF32 keeps 10 mantissa bits
  EXPECT_TRUE(close(conv_ref, fast_conv, 5e-3));
  EXPECT_TRUE(close(a.to(kFloat64).mm(b.to(kFloat64)), f64));
  EXPECT_TRUE(close(ref, a.to(dev()).mm(b.to(dev()))));  // and off again
}

TEST_F(Cuda, CatAndStack) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor a = leaf({2, 3, 4}, dt), b = leaf({2, 5, 4}, dt), c = leaf({2, 1, 4}, dt);
    check_op("cat dim 1", OP(cat({x[0], x[1], x[2]}, 1)), {a, b, c});
    check_op("cat dim 0", OP(cat({x[0], x[1]}, 0)), {a, leaf({3, 3, 4}, dt)});
    check_op("cat dim -1", OP(cat({x[0], x[1]}, -1)), {a, leaf({2, 3, 2}, dt)});
    check_op("cat strided", OP(cat({x[0].transpose(0, 2), x[1].transpose(0, 2)}, 1)), {a, b});
    check_op("cat with an empty", OP(cat({x[0], x[1]}, 1)), {a, zeros({2, 0, 4}, {.dtype = dt})});
    check_op("cat one", OP(cat({x[0]}, 0)), {a});
    check_op("cat same twice", OP(cat({x[0], x[0]}, 2)), {a});
    for (int64_t d : {0, 1, 3, -1})
      check_op("stack", [d](const TensorList& v) { return stack({v[0], v[1], v[2]}, d); },
               {a, leaf({2, 3, 4}, dt), leaf({2, 3, 4}, dt)});
  }
  check_op("cat int64", OP(cat({x[0], x[1]}, 0)), {randint(0, 9, {2, 3}), randint(0, 9, {1, 3})});
  check_op("stack bool", OP(stack({x[0], x[1]}, 1)), {randn({4}) > 0.0, randn({4}) > 0.0});
  check_op("cat mixed dtypes", OP(cat({x[0], x[1]}, 0)), {leaf({2, 3}), leaf({1, 3}, kFloat64)});
}

TEST_F(Cuda, IndexingOps) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = leaf({5, 6, 4}, dt);
    Tensor idx = longs({4, 0, 2, 2, -1, 1});
    check_op("index_select 0", OP(index_select(x[0], 0, x[1])), {x, idx});
    check_op("index_select 1", OP(index_select(x[0], 1, x[1])), {x, longs({5, 5, 0})});
    check_op("index_select -1", OP(index_select(x[0], -1, x[1])), {x, longs({3, 0})});
    check_op("index_select strided", OP(index_select(x[0].transpose(0, 2), 2, x[1])), {x, idx});
    check_op("index_select empty", OP(index_select(x[0], 0, x[1])), {x, zeros({0}, {.dtype = kInt64})});
    // Repeated indices accumulate (atomics on the device).
    check_op("index_add 0", OP(index_add(x[0], 0, x[1], x[2])), {x, idx, leaf({6, 6, 4}, dt)});
    check_op("index_add 1", OP(index_add(x[0], 1, x[1], x[2])), {x, longs({1, 1, 1, 5}), leaf({5, 4, 4}, dt)});
    check_op("index_add many repeats", OP(index_add(x[0], 0, x[1], x[2])),
             {leaf({3, 8}, dt), randint(0, 3, {4000}), leaf({4000, 8}, dt)});
    Tensor g1 = randint(0, 6, {5, 3, 4}), g0 = randint(0, 5, {2, 6, 4});
    check_op("gather 1", OP(gather(x[0], 1, x[1])), {x, g1});
    check_op("gather 0", OP(gather(x[0], 0, x[1])), {x, g0});
    check_op("gather -1", OP(gather(x[0], -1, x[1])), {x, randint(0, 4, {5, 6, 7})});
    check_op("gather strided", OP(gather(x[0].transpose(0, 1), 0, x[1])), {x, randint(0, 6, {3, 5, 4})});
    check_op("scatter_add 1", OP(scatter_add(x[0], 1, x[1], x[2])), {x, g1, leaf({5, 3, 4}, dt)});
    check_op("scatter_add 0", OP(scatter_add(x[0], 0, x[1], x[2])), {x, g0, leaf({2, 6, 4}, dt)});
    check_op("scatter_add many repeats", OP(scatter_add(x[0], 1, x[1], x[2])),
             {leaf({4, 3}, dt), randint(0, 3, {4, 5000}), leaf({4, 5000}, dt)});
    for (const Shape& dims : {Shape{0}, Shape{1}, Shape{-1}, Shape{0, 2}, Shape{0, 1, 2}})
      check_op("flip", [dims](const TensorList& v) { return flip(v[0], dims); }, {x});
    check_op("flip strided", OP(flip(x[0].transpose(0, 1), {0})), {x});
  }
  check_op("index_select int64", OP(index_select(x[0], 0, x[1])), {randint(0, 9, {4, 3}), longs({3, 0})});
  check_op("gather bool", OP(gather(x[0], 1, x[1])), {randn({3, 4}) > 0.0, randint(0, 4, {3, 2})});
  check_op("flip int64", OP(flip(x[0], {1})), {randint(0, 9, {4, 3})});
}

TEST_F(Cuda, Pad) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x4 = leaf({2, 3, 5, 6}, dt), x3 = leaf({2, 3, 7}, dt);
    for (const char* mode : {"constant", "reflect", "replicate", "circular"}) {
      SCOPED_TRACE(mode);
      std::string m = mode;
      check_op("pad 2-D", [m](const TensorList& v) { return pad(v[0], {1, 2, 2, 1}, m); }, {x4});
      check_op("pad 1-D", [m](const TensorList& v) { return pad(v[0], {3, 1}, m); }, {x3});
      check_op("pad strided", [m](const TensorList& v) { return pad(v[0].transpose(2, 3), {0, 2, 1, 0}, m); }, {x4});
    }
    check_op("pad value", OP(pad(x[0], {1, 1, 1, 1}, "constant", -2.5)), {x4});
    check_op("pad crop", OP(pad(x[0], {-1, 2, 0, -2})), {x4});
    check_op("pad outer dims", OP(pad(x[0], {0, 0, 1, 1, 2, 0})), {x4});
  }
  check_op("pad int64", OP(pad(x[0], {1, 1})), {randint(0, 9, {3, 4})});
}

// ---- layers ----

TEST_F(Cuda, LinearAndBilinear) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    auto lin = nn::make<nn::Linear>(7, 5);
    lin->to(dt);
    check_train_eval("Linear", lin, {leaf({4, 7}, dt)});
    check_train_eval("Linear 3-D input", lin, {leaf({2, 3, 7}, dt)});
    check_train_eval("Linear 1-D input", lin, {leaf({7}, dt)});
    auto nobias = nn::make<nn::Linear>(nn::Linear::Options{.in_features = 7, .out_features = 3, .bias = false});
    nobias->to(dt);
    check_train_eval("Linear without bias", nobias, {leaf({4, 7}, dt)});
    auto bil = nn::make<nn::Bilinear>(5, 4, 3);
    bil->to(dt);
    check_train_eval("Bilinear", bil, {leaf({6, 5}, dt), leaf({6, 4}, dt)});
    auto bil_nb = nn::make<nn::Bilinear>(3, 3, 2, false);
    bil_nb->to(dt);
    Tensor same = leaf({4, 3}, dt);
    check_train_eval("Bilinear without bias, one input twice", bil_nb, {same, same});
  }
}

TEST_F(Cuda, Convolutions) {
  using C2 = nn::Conv2d::Options;
  const std::vector<std::pair<std::string, C2>> conv2d = {
      {"plain", C2{.in_channels = 3, .out_channels = 8, .kernel_size = 3}},
      {"stride 2 padding 1", C2{.in_channels = 3, .out_channels = 8, .kernel_size = 3, .stride = 2, .padding = 1}},
      {"dilation 2 groups 2",
       C2{.in_channels = 4, .out_channels = 6, .kernel_size = 3, .padding = 2, .dilation = 2, .groups = 2}},
      {"depthwise same", C2{.in_channels = 4, .out_channels = 4, .kernel_size = 3, .padding = "same", .groups = 4}},
      {"rectangular, no bias",
       C2{.in_channels = 3, .out_channels = 5, .kernel_size = {3, 2}, .stride = {2, 1}, .padding = {1, 0}, .bias = false}},
      {"1x1", C2{.in_channels = 4, .out_channels = 2, .kernel_size = 1}},
      {"same, dilated", C2{.in_channels = 2, .out_channels = 3, .kernel_size = 3, .padding = "same", .dilation = {2, 1}}},
      {"reflect", C2{.in_channels = 3, .out_channels = 4, .kernel_size = 3, .padding = 1, .padding_mode = "reflect"}},
      {"replicate", C2{.in_channels = 3, .out_channels = 4, .kernel_size = 3, .padding = 2, .padding_mode = "replicate"}},
      {"circular", C2{.in_channels = 3, .out_channels = 4, .kernel_size = 3, .stride = 2, .padding = 1,
                      .padding_mode = "circular"}},
  };
  using C1 = nn::Conv1d::Options;
  const std::vector<std::pair<std::string, C1>> conv1d = {
      {"plain", C1{.in_channels = 3, .out_channels = 6, .kernel_size = 3}},
      {"stride 2 padding 1", C1{.in_channels = 3, .out_channels = 6, .kernel_size = 3, .stride = 2, .padding = 1}},
      {"same dilated groups",
       C1{.in_channels = 4, .out_channels = 4, .kernel_size = 5, .padding = "same", .dilation = 2, .groups = 2}},
      {"circular", C1{.in_channels = 2, .out_channels = 3, .kernel_size = 3, .padding = 1, .padding_mode = "circular"}},
  };
  using CT = nn::ConvTranspose2d::Options;
  const std::vector<std::pair<std::string, CT>> convt = {
      {"plain", CT{.in_channels = 4, .out_channels = 6, .kernel_size = 3}},
      {"stride 2 output_padding 1",
       CT{.in_channels = 4, .out_channels = 6, .kernel_size = 3, .stride = 2, .padding = 1, .output_padding = 1}},
      {"groups dilation", CT{.in_channels = 4, .out_channels = 4, .kernel_size = 3, .groups = 2, .dilation = 2}},
      {"rectangular, no bias",
       CT{.in_channels = 3, .out_channels = 2, .kernel_size = {2, 3}, .stride = {2, 1}, .bias = false}},
  };
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    for (auto& [name, o] : conv2d) {
      auto m = nn::make<nn::Conv2d>(o);
      m->to(dt);
      check_train_eval("Conv2d " + name, m, {leaf({2, o.in_channels, 9, 8}, dt)});
    }
    auto strided = permuted({0, 3, 1, 2}, nn::make<nn::Conv2d>(conv2d[1].second));
    strided->to(dt);
    check_train_eval("Conv2d of a permuted input", strided, {leaf({2, 9, 8, 3}, dt)});
    for (auto& [name, o] : conv1d) {
      auto m = nn::make<nn::Conv1d>(o);
      m->to(dt);
      check_train_eval("Conv1d " + name, m, {leaf({2, o.in_channels, 11}, dt)});
    }
    for (auto& [name, o] : convt) {
      auto m = nn::make<nn::ConvTranspose2d>(o);
      m->to(dt);
      check_train_eval("ConvTranspose2d " + name, m, {leaf({2, o.in_channels, 5, 6}, dt)});
    }
    // Functional forms with a strided (non-contiguous) input.
    check_op("conv2d of a permuted input", OP(F::conv2d(x[0].permute({0, 3, 1, 2}), x[1], x[2], {.stride = 2, .padding = 1})),
             {leaf({2, 7, 6, 3}, dt), leaf({4, 3, 3, 3}, dt), leaf({4}, dt)});
    check_op("conv1d", OP(F::conv1d(x[0], x[1], {}, 2, 1, 1, 1)), {leaf({2, 3, 10}, dt), leaf({5, 3, 4}, dt)});
    check_op("conv_transpose2d", OP(F::conv_transpose2d(x[0], x[1], x[2], {.stride = 2, .padding = 1})),
             {leaf({2, 3, 4, 4}, dt), leaf({3, 5, 3, 3}, dt), leaf({5}, dt)});
  }
  // A bigger float32 convolution, where the device's algorithms differ most from the CPU's.
  auto big = nn::make<nn::Conv2d>(C2{.in_channels = 32, .out_channels = 64, .kernel_size = 3, .padding = 1});
  check_module(big, {leaf({8, 32, 28, 28})});
}

TEST_F(Cuda, Normalization) {
  using BN = nn::BatchNorm::Options;
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    // Running statistics and num_batches_tracked after several training steps, then eval.
    for (auto& [name, o] : std::vector<std::pair<std::string, BN>>{
             {"default", BN{.num_features = 6}},
             {"cumulative average", BN{.num_features = 6, .momentum = std::nullopt}},
             {"momentum 0.3, no affine", BN{.num_features = 6, .momentum = 0.3, .affine = false}},
             {"no running stats", BN{.num_features = 6, .track_running_stats = false}}}) {
      auto bn2 = nn::make<nn::BatchNorm2d>(o);
      bn2->to(dt);
      check_train_eval("BatchNorm2d " + name, bn2, {leaf({4, 6, 5, 5}, dt)}, 3);
      auto bn1 = nn::make<nn::BatchNorm1d>(o);
      bn1->to(dt);
      check_train_eval("BatchNorm1d [N, C] " + name, bn1, {leaf({8, 6}, dt)}, 3);
      check_train_eval("BatchNorm1d [N, C, L] " + name, bn1, {leaf({4, 6, 7}, dt)}, 3);
    }
    auto bn = permuted({0, 3, 1, 2}, nn::make<nn::BatchNorm2d>(3));
    bn->to(dt);
    check_train_eval("BatchNorm2d of a permuted input", bn, {leaf({2, 4, 5, 3}, dt)}, 2);
    auto lnp = permuted({0, 2, 1}, nn::make<nn::LayerNorm>(Shape{6}));
    lnp->to(dt);
    check_train_eval("LayerNorm of a permuted input", lnp, {leaf({2, 6, 5}, dt)});
    auto gn = nn::make<nn::GroupNorm>(3, 6);
    gn->to(dt);
    check_train_eval("GroupNorm", gn, {leaf({2, 6, 4, 5}, dt)});
    check_train_eval("GroupNorm 3-D input", gn, {leaf({3, 6, 10}, dt)});
    auto gn1 = nn::make<nn::GroupNorm>(1, 4, 1e-3, false);
    gn1->to(dt);
    check_train_eval("GroupNorm one group, no affine", gn1, {leaf({2, 4, 3, 3}, dt)});
    auto ln = nn::make<nn::LayerNorm>(Shape{5});
    ln->to(dt);
    check_train_eval("LayerNorm", ln, {leaf({3, 4, 5}, dt)});
    auto ln2 = nn::make<nn::LayerNorm>(Shape{4, 5}, 1e-6, false);
    ln2->to(dt);
    check_train_eval("LayerNorm 2-D, no affine", ln2, {leaf({3, 4, 5}, dt)});
    check_train_eval("LayerNorm of long rows", nn::Ptr<>(nn::make<nn::LayerNorm>(Shape{4096})), {leaf({3, 4096})});
    auto in = nn::make<nn::InstanceNorm2d>(6);
    in->to(dt);
    check_train_eval("InstanceNorm2d", in, {leaf({2, 6, 4, 5}, dt)});
    auto ina = nn::make<nn::InstanceNorm2d>(6, 1e-5, true);
    ina->to(dt);
    check_train_eval("InstanceNorm2d affine", ina, {leaf({2, 6, 4, 5}, dt)});
  }
}

TEST_F(Cuda, BatchNormCountsBatchesAndTracksRunningStatsOverSteps) {
  auto cpu = nn::make<nn::BatchNorm2d>(4);
  auto gpu = cpu->clone().as<nn::BatchNorm2d>();
  gpu->to(dev());
  for (int step = 0; step < 5; ++step) {
    Tensor x = randn({3, 4, 6, 6}) * (step + 1.0) + step;
    Tensor yc = cpu(x), yg = gpu(x.to(dev()));
    ASSERT_TRUE(close(yc, yg));
  }
  EXPECT_EQ(gpu->num_batches_tracked.dtype(), kInt64);
  EXPECT_EQ(gpu->num_batches_tracked.device(), dev());
  EXPECT_EQ(gpu->num_batches_tracked.item<int64_t>(), 5);
  EXPECT_TRUE(close(cpu->running_mean, gpu->running_mean));
  EXPECT_TRUE(close(cpu->running_var, gpu->running_var));
  cpu->eval();
  gpu->eval();
  Tensor x = randn({2, 4, 6, 6});
  EXPECT_TRUE(close(cpu(x), gpu(x.to(dev()))));
  EXPECT_EQ(gpu->num_batches_tracked.item<int64_t>(), 5);  // not counted in eval
  // The functional form updates the buffers it is given, in place on the device.
  Tensor rm = zeros({4}, {.device = dev()}), rv = ones({4}, {.device = dev()});
  Tensor nbt = zeros({}, {.dtype = kInt64, .device = dev()});
  Tensor rmc = zeros({4}), rvc = ones({4}), nbtc = zeros({}, {.dtype = kInt64});
  Tensor xb = randn({5, 4, 3, 3});
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(close(F::batch_norm(xb, rmc, rvc, {}, {}, true, std::nullopt, 1e-5, nbtc),
                      F::batch_norm(xb.to(dev()), rm, rv, {}, {}, true, std::nullopt, 1e-5, nbt)));
  }
  EXPECT_TRUE(close(rmc, rm));
  EXPECT_TRUE(close(rvc, rv));
  EXPECT_TRUE(close(nbtc, nbt));
}

TEST_F(Cuda, ActivationsDropoutPoolingAndShapeLayers) {
  Tensor x = leaf({4, 7});
  const std::vector<std::pair<std::string, nn::Ptr<>>> acts = {
      {"ReLU", nn::make<nn::ReLU>()},
      {"GELU", nn::make<nn::GELU>()},
      {"GELU tanh", nn::make<nn::GELU>("tanh")},
      {"Sigmoid", nn::make<nn::Sigmoid>()},
      {"Tanh", nn::make<nn::Tanh>()},
      {"LeakyReLU", nn::make<nn::LeakyReLU>(0.1)},
      {"SiLU", nn::make<nn::SiLU>()},
      {"Softmax", nn::make<nn::Softmax>(1)},
      {"LogSoftmax", nn::make<nn::LogSoftmax>(0)},
      {"Identity", nn::make<nn::Identity>()},
      {"Flatten", nn::make<nn::Flatten>()},
      {"Unflatten", nn::make<nn::Unflatten>(1, Shape{7, 1})},
      {"in-place ReLU after Linear", nn::make<nn::Sequential>(nn::make<nn::Linear>(7, 5), nn::make<nn::ReLU>(true))},
  };
  for (auto& [name, m] : acts) check_train_eval(name, m, {x});
  for (double p : {0.0, 0.5}) {
    auto d = nn::make<nn::Dropout>(p);
    d->eval();
    SCOPED_TRACE(p);
    check_module(d, {x});
    auto d2 = nn::make<nn::Dropout2d>(p);
    d2->eval();
    check_module(d2, {leaf({2, 3, 4, 4})});
  }
  Tensor img = leaf({2, 3, 9, 8});
  const std::vector<std::pair<std::string, nn::Ptr<>>> pools = {
      {"MaxPool2d 2", nn::make<nn::MaxPool2d>(2)},
      {"MaxPool2d 3 stride 2 padding 1", nn::make<nn::MaxPool2d>(3, 2, 1)},
      {"MaxPool2d ceil_mode", nn::make<nn::MaxPool2d>(2, std::nullopt, 0, true)},
      {"MaxPool2d rectangular", nn::make<nn::MaxPool2d>(F::Pair{3, 2}, F::Pair{1, 2})},
      {"AvgPool2d 2", nn::make<nn::AvgPool2d>(2)},
      {"AvgPool2d 3 stride 2 padding 1", nn::make<nn::AvgPool2d>(3, 2, 1)},
      {"AvgPool2d ceil_mode", nn::make<nn::AvgPool2d>(3, 2, 1, true)},
      {"AdaptiveAvgPool2d 1", nn::make<nn::AdaptiveAvgPool2d>(1)},
      {"AdaptiveAvgPool2d 4x3 (uneven)", nn::make<nn::AdaptiveAvgPool2d>(F::Pair{4, 3})},
      {"AdaptiveAvgPool2d larger than input", nn::make<nn::AdaptiveAvgPool2d>(F::Pair{12, 10})},
      {"Flatten 2..3", nn::make<nn::Flatten>(2, 3)},
  };
  for (auto& [name, m] : pools) {
    check_train_eval(name, m, {img});
    check_train_eval(name + " of a strided input", permuted({0, 3, 2, 1}, m), {leaf({2, 8, 9, 3})});
    check_train_eval(name + " float64", m, {leaf({1, 2, 7, 7}, kFloat64)});
  }
  // Ties inside pooling windows: the gradient goes to the same element on both devices.
  Tensor ties = randint(0, 2, {2, 2, 6, 6}).to(kFloat32);
  ties.requires_grad_();
  check_module(nn::make<nn::MaxPool2d>(2), {ties});
  check_module(nn::make<nn::MaxPool2d>(3, 1, 1), {ties});
}

TEST_F(Cuda, DropoutInTrainingModeOnTheDevice) {
  // Random masks differ between devices: check the statistics and the scaling instead.
  Tensor x = ones({64, 32, 4, 4}, {.device = dev(), .requires_grad = true});
  auto d = nn::make<nn::Dropout>(0.25);
  d->to(dev());
  Tensor y = d(x);
  ASSERT_EQ(y.device(), dev());
  Tensor yc = y.detach().to(kCpu);
  Tensor kept = yc != 0.0;
  EXPECT_TRUE(allclose(where(kept, yc, 1.0 / 0.75), full(yc.sizes(), 1.0 / 0.75)));  // kept values scaled by 1/(1-p)
  EXPECT_NEAR(kept.to(kFloat32).mean().item<double>(), 0.75, 0.02);
  y.sum().backward();
  EXPECT_TRUE(allclose(x.grad().to(kCpu), yc));  // the same mask in backward
  auto d2 = nn::make<nn::Dropout2d>(0.5);
  Tensor y2 = d2(x.detach()).to(kCpu);
  EXPECT_TRUE(equal(y2.amax({2, 3}), y2.amin({2, 3})));  // whole channels
  EXPECT_NEAR((y2.amax({2, 3}) > 0.0).to(kFloat32).mean().item<double>(), 0.5, 0.05);
}

TEST_F(Cuda, EmbeddingAndMultiheadAttention) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    auto emb = nn::make<nn::Embedding>(nn::Embedding::Options{.num_embeddings = 10, .embedding_dim = 4, .padding_idx = 2});
    emb->to(dt);
    Tensor idx = from_vector(std::vector<int64_t>{1, 2, 2, 9, 0, 1, 1, 1, 2, 5}, Shape{2, 5});
    check_train_eval("Embedding", emb, {idx});
    check_train_eval("Embedding, many repeats", emb, {randint(0, 3, {4000})});
    check_train_eval("Embedding, strided indices", emb, {idx.t()});

    auto mha = nn::make<nn::MultiheadAttention>(8, 2);
    mha->to(dt);
    Tensor q = leaf({3, 2, 8}, dt), k = leaf({4, 2, 8}, dt), v = leaf({4, 2, 8}, dt);
    check_train_eval("MultiheadAttention", mha, {q, k, v});
    check_train_eval("MultiheadAttention self", mha, {q, q, q});
    Tensor kpm = zeros({2, 4}, {.dtype = kBool});
    kpm.select(0, 1).select(0, 3).fill_(1.0);
    Tensor causal = arange(4).view({1, 4}) > arange(3).view({3, 1});
    check_train_eval("MultiheadAttention key_padding_mask", mha, {q, k, v, kpm});
    check_train_eval("MultiheadAttention bool attn_mask", mha, {q, k, v, kpm, causal});
    check_train_eval("MultiheadAttention float attn_mask", mha, {q, k, v, Tensor(), randn({3, 4}, {.dtype = dt})});
    auto bf = nn::make<nn::MultiheadAttention>(
        nn::MultiheadAttention::Options{.embed_dim = 12, .num_heads = 3, .bias = false, .batch_first = true});
    bf->to(dt);
    check_train_eval("MultiheadAttention batch_first, no bias", bf, {leaf({2, 5, 12}, dt), leaf({2, 6, 12}, dt), leaf({2, 6, 12}, dt)});
  }
}

TEST_F(Cuda, Losses) {
  using R = F::Reduction;
  // Loss modules with weights get their own instance per device (see CloneThenToLeavesTheOriginal...).
  auto check_loss = [](const std::string& name, const std::function<nn::Ptr<>()>& make, const TensorList& inputs) {
    SCOPED_TRACE(name);
    nn::Ptr<> cpu = make(), gpu = make();
    gpu->to(dev());
    check_modules(*cpu, *gpu, inputs);
  };
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor in = leaf({6, 5}, dt), tgt = randn({6, 5}, {.dtype = dt}), w = rand({5}, {.dtype = dt}) + 0.5;
    Tensor prob = rand({6, 5}, {.dtype = dt}) * 0.9 + 0.05;
    prob.requires_grad_();
    Tensor labels = randint(0, 5, {6});
    Tensor labels_ignored = longs({0, -100, 4, 2, -100, 1});
    Tensor seg = leaf({2, 5, 3, 4}, dt), seg_labels = randint(0, 5, {2, 3, 4});
    for (R r : {R::Mean, R::Sum, R::None}) {
      SCOPED_TRACE(static_cast<int>(r));
      check_loss("MSELoss", [r] { return nn::Ptr<>(nn::make<nn::MSELoss>(r)); }, {in, tgt});
      check_loss("MSELoss, target requires grad", [r] { return nn::Ptr<>(nn::make<nn::MSELoss>(r)); }, {in, leaf({6, 5}, dt)});
      check_loss("L1Loss", [r] { return nn::Ptr<>(nn::make<nn::L1Loss>(r)); }, {in, tgt});
      check_loss("CrossEntropyLoss", [r] { return nn::Ptr<>(nn::make<nn::CrossEntropyLoss>(F::CrossEntropyOptions{.reduction = r})); },
                 {in, labels});
      check_loss("CrossEntropyLoss weight, ignore_index, smoothing",
                 [r, w] {
                   return nn::Ptr<>(nn::make<nn::CrossEntropyLoss>(
                       F::CrossEntropyOptions{.weight = w.clone(), .reduction = r, .label_smoothing = 0.1}));
                 },
                 {in, labels_ignored});
      check_loss("CrossEntropyLoss [N, C, d1, d2]",
                 [r, w] { return nn::Ptr<>(nn::make<nn::CrossEntropyLoss>(F::CrossEntropyOptions{.weight = w.clone(), .reduction = r})); },
                 {seg, seg_labels});
      check_loss("NLLLoss",
                 [r, w] {
                   return nn::Ptr<>(nn::make<nn::NLLLoss>(F::CrossEntropyOptions{.weight = w.clone(), .ignore_index = 4, .reduction = r}));
                 },
                 {in.log_softmax(1), labels});
      check_loss("BCELoss", [r] { return nn::Ptr<>(nn::make<nn::BCELoss>(Tensor(), r)); }, {prob, rand({6, 5}, {.dtype = dt})});
      check_loss("BCELoss weight", [r, w] { return nn::Ptr<>(nn::make<nn::BCELoss>(w.clone(), r)); },
                 {prob, rand({6, 5}, {.dtype = dt})});
      check_loss("BCEWithLogitsLoss", [r] { return nn::Ptr<>(nn::make<nn::BCEWithLogitsLoss>(Tensor(), Tensor(), r)); },
                 {in * 20.0, rand({6, 5}, {.dtype = dt})});
      check_loss("BCEWithLogitsLoss weight, pos_weight",
                 [r, w, dt] { return nn::Ptr<>(nn::make<nn::BCEWithLogitsLoss>(w.clone(), full({5}, 2.0, {.dtype = dt}), r)); },
                 {in, rand({6, 5}, {.dtype = dt})});
    }
  }
  // All targets ignored: a mean over nothing (NaN), the same on both devices.
  check_op("cross_entropy all ignored", OP(F::cross_entropy(x[0], x[1])), {leaf({3, 4}), longs({-100, -100, -100})});
}

// ---- training ----

TEST_F(Cuda, OptimizerStepsMatchTheCpu) {
  auto make_opt = [](int kind, const TensorList& p) -> std::unique_ptr<optim::Optimizer> {
    switch (kind) {
      case 0: return std::make_unique<optim::SGD>(p, optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
      case 1: return std::make_unique<optim::SGD>(p, optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3, .nesterov = true});
      case 2: return std::make_unique<optim::Adam>(p, optim::AdamOptions{.lr = 0.01});
      case 3: return std::make_unique<optim::Adam>(p, optim::AdamOptions{.lr = 0.01, .weight_decay = 1e-2, .amsgrad = true});
      case 4: return std::make_unique<optim::AdamW>(p, optim::AdamWOptions{.lr = 0.01});
      default: return std::make_unique<optim::RMSprop>(p, optim::RMSpropOptions{.lr = 0.01, .momentum = 0.5, .centered = true});
    }
  };
  for (int kind = 0; kind < 6; ++kind) {
    SCOPED_TRACE(::testing::Message() << "optimizer " << kind);
    manual_seed(5);
    auto cpu = nn::make<nn::Sequential>(nn::make<nn::Linear>(6, 16), nn::make<nn::Tanh>(), nn::make<nn::Linear>(16, 3));
    nn::Ptr<> gpu = cpu->clone();
    gpu->to(dev());
    auto oc = make_opt(kind, cpu->parameters()), og = make_opt(kind, gpu->parameters());
    for (int step = 0; step < 4; ++step) {
      Tensor x = randn({8, 6}), y = randn({8, 3});
      oc->zero_grad();
      og->zero_grad();
      Tensor lc = (cpu(x) - y).pow(2.0).mean(), lg = (gpu(x.to(dev())) - y.to(dev())).pow(2.0).mean();
      ASSERT_TRUE(close(lc, lg));
      lc.backward();
      lg.backward();
      double nc = optim::clip_grad_norm_(cpu->parameters(), 0.5), ng = optim::clip_grad_norm_(gpu->parameters(), 0.5);
      EXPECT_NEAR(nc, ng, 1e-5 * nc);
      oc->step();
      og->step();
    }
    auto pg = gpu->named_parameters();
    for (auto& [n, p] : cpu->named_parameters()) {
      EXPECT_TRUE(close(p, pg.at(n))) << n;
      EXPECT_EQ(pg.at(n).device(), dev()) << n;
    }
  }
}

TEST_F(Cuda, TrainingASmallConvNetMatchesTheCpu) {
  // The spec's training loop (conv, batch norm, pooling, cross entropy, SGD with momentum) in
  // float64, a few steps on both devices.
  manual_seed(0);
  auto cpu = nn::make<nn::Sequential>(
      nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 3, .out_channels = 8, .kernel_size = 3, .padding = 1, .bias = false}),
      nn::make<nn::BatchNorm2d>(8), nn::make<nn::ReLU>(), nn::make<nn::MaxPool2d>(2), nn::make<nn::AdaptiveAvgPool2d>(1),
      nn::make<nn::Flatten>(), nn::make<nn::Linear>(8, 10));
  cpu->to(kFloat64);
  nn::Ptr<> gpu = cpu->clone();
  gpu->to(dev());
  optim::SGD oc(cpu->parameters(), {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4});
  optim::SGD og(gpu->parameters(), {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4});
  Tensor images = randn({16, 3, 16, 16}, {.dtype = kFloat64}), labels = randint(0, 10, {16});
  Tensor gi = images.to(dev()), gl = labels.to(dev());
  for (int step = 0; step < 5; ++step) {
    oc.zero_grad();
    og.zero_grad();
    Tensor lc = F::cross_entropy(cpu(images), labels), lg = F::cross_entropy(gpu(gi), gl);
    ASSERT_TRUE(close(lc, lg)) << "step " << step;
    lc.backward();
    lg.backward();
    oc.step();
    og.step();
  }
  auto sg = gpu->state_dict();
  for (auto& [n, t] : cpu->state_dict()) EXPECT_TRUE(close(t, sg.at(n))) << n;
}

TEST_F(Cuda, CloneThenToLeavesTheOriginalOnTheCpu) {
  if (kDryRun) GTEST_SKIP() << "needs a real device";
  const std::vector<nn::Ptr<>> modules = {
      nn::make<nn::Linear>(3, 2), nn::make<nn::BatchNorm2d>(3),
      nn::make<nn::CrossEntropyLoss>(F::CrossEntropyOptions{.weight = rand({3})}),
      nn::make<nn::BCEWithLogitsLoss>(rand({3}), rand({3}))};
  for (auto& m : modules) {
    SCOPED_TRACE(m->name());
    nn::Ptr<> g = m->clone();
    g->to(dev());
    for (auto& [n, t] : g->state_dict()) EXPECT_EQ(t.device(), dev()) << n;
    for (auto& [n, t] : m->state_dict()) EXPECT_TRUE(t.is_cpu()) << n << " moved with the clone";
  }
}

// ---- hooks, feature extraction ----

TEST_F(Cuda, HooksOnACudaModule) {
  struct Seen {
    Device pre = Device::cpu();
    Tensor out, grad_in, grad_out, tensor_grad;
  };
  auto cpu = nn::make<nn::Sequential>(nn::make<nn::Linear>(6, 8), nn::make<nn::Tanh>(), nn::make<nn::Linear>(8, 3));
  nn::Ptr<> gpu = cpu->clone();
  gpu->to(dev());
  Seen sc, sg;
  auto install = [](nn::Module& m, Seen& s) {
    std::vector<nn::ScopedHook> h;
    nn::Module& last = m.get_submodule("2");
    h.emplace_back(last.register_forward_pre_hook([&s](nn::Module&, TensorList& in) {
      s.pre = in[0].device();
      in[0] = in[0] * 2.0;  // replaces the input
    }));
    h.emplace_back(last.register_forward_hook([&s](nn::Module&, const TensorList&, TensorList& out) {
      s.out = out[0].detach();
      out[0] = out[0] + 1.0;  // replaces the output
    }));
    h.emplace_back(last.register_full_backward_hook([&s](nn::Module&, TensorList& gi, const TensorList& go) {
      s.grad_in = gi[0];
      s.grad_out = go[0];
      gi[0] = gi[0] * 0.5;  // replaces the gradient flowing on
    }));
    return h;
  };
  auto hc = install(*cpu, sc), hg = install(*gpu, sg);
  TensorList c = copy_inputs({leaf({4, 6})}, kCpu), g = copy_inputs(c, dev());
  Tensor yc = cpu(c[0]), yg = gpu(g[0]);
  auto th_c = yc.register_hook([&sc](const Tensor& grad) {
    sc.tensor_grad = grad;
    return grad * 3.0;
  });
  auto th_g = yg.register_hook([&sg](const Tensor& grad) {
    sg.tensor_grad = grad;
    return grad * 3.0;
  });
  ASSERT_TRUE(close(yc, yg));
  EXPECT_EQ(sg.pre, dev());
  EXPECT_TRUE(close(sc.out, sg.out));
  Tensor up = randn({4, 3});
  yc.backward(up);
  yg.backward(up.to(dev()));
  EXPECT_TRUE(close(sc.tensor_grad, sg.tensor_grad));
  EXPECT_TRUE(close(sc.grad_out, sg.grad_out));
  EXPECT_TRUE(close(sc.grad_in, sg.grad_in));
  EXPECT_TRUE(close(c[0].grad(), g[0].grad()));
  auto pg = gpu->named_parameters();
  for (auto& [n, p] : cpu->named_parameters()) EXPECT_TRUE(close(p.grad(), pg.at(n).grad())) << n;
}

TEST_F(Cuda, FeatureExtractorAndGradientInspectorOnACudaModule) {
  auto cpu = nn::make<nn::Sequential>(nn::make<nn::Linear>(10, 20), nn::make<nn::ReLU>(), nn::make<nn::Linear>(20, 20),
                                      nn::make<nn::ReLU>(), nn::make<nn::Linear>(20, 10));
  nn::Ptr<> gpu = cpu->clone();
  gpu->to(dev());
  Tensor x = randn({4, 10});
  for (nn::Capture policy : {nn::Capture::Detach, nn::Capture::DetachClone}) {
    nn::FeatureExtractor fc(*cpu, {"1", "3"}, policy), fg(*gpu, {"1", "3"}, policy);
    {
      auto a = fc.capture();
      auto b = fg.capture();
      NoGradGuard ng;
      cpu(x);
      gpu(x.to(dev()));
    }
    for (const char* name : {"1", "3"}) {
      const Tensor& f = fg.features().at(name);
      EXPECT_FALSE(f.requires_grad());
      EXPECT_TRUE(close(fc.features().at(name), f)) << name;
      EXPECT_TRUE(close(fc.snapshot().at(name), fg.snapshot().at(name))) << name;
    }
  }
  nn::GradientInspector ic(*cpu, {"0", "2", "4"}), ig(*gpu, {"0", "2", "4"});
  {
    auto a = ic.capture();
    auto b = ig.capture();
    cpu(x).pow(2.0).mean().backward();
    gpu(x.to(dev())).pow(2.0).mean().backward();
  }
  ASSERT_EQ(ic.stats().size(), ig.stats().size());
  for (auto& [name, s] : ic.stats()) {
    const nn::GradStats& t = ig.stats().at(name);
    EXPECT_NEAR(s.mean, t.mean, 1e-5 * s.mean) << name;
    EXPECT_NEAR(s.max, t.max, 1e-5 * s.max) << name;
    EXPECT_NEAR(s.std, t.std, 1e-4 * s.std + 1e-12) << name;
    EXPECT_EQ(s.vanishing, t.vanishing) << name;
  }
  EXPECT_EQ(ic.flagged(), ig.flagged());
}

// ---- devices: errors, memory ----

TEST_F(Cuda, MixingCpuAndCudaTensorsIsAnErrorNamingBothDevices) {
  if (kDryRun) GTEST_SKIP() << "needs a real device";
  Tensor a = randn({3}), b = randn({3}).to(Device::cuda());
  const std::vector<std::pair<std::string, std::function<void()>>> cases = {
      {"add", [&] { (void)(a + b); }},
      {"mul", [&] { (void)(b * a); }},
      {"maximum", [&] { (void)maximum(b, a); }},
      {"comparison", [&] { (void)(a < b); }},
      {"where", [&] { (void)where(b > 0.0, a, b); }},
      {"matmul", [&] { (void)matmul(a.view({1, 3}), b.view({3, 1})); }},
      {"cat", [&] { (void)cat({a, b}); }},
      {"index_select", [&] { (void)index_select(b, 0, longs({0})); }},
      {"in-place add_", [&] { b.add_(a); }},
      {"linear", [&] { (void)F::linear(a.view({1, 3}), b.view({1, 3})); }},
      {"cross_entropy", [&] { (void)F::cross_entropy(b.view({1, 3}), longs({1})); }},
  };
  for (auto& [name, f] : cases) {
    std::string e = error_of(f);
    EXPECT_NE(e.find("cpu"), std::string::npos) << name << ": " << e;
    EXPECT_NE(e.find("cuda:0"), std::string::npos) << name << ": " << e;
  }
  auto lin = nn::make<nn::Linear>(3, 2);
  lin->to(Device::cuda());
  std::string e = error_of([&] { lin(a.view({1, 3})); });
  EXPECT_NE(e.find("cpu"), std::string::npos) << e;
  EXPECT_NE(e.find("cuda:0"), std::string::npos) << e;
}

TEST_F(Cuda, MemoryReturnsToItsStartAfterATrainingStep) {
  if (kDryRun) GTEST_SKIP() << "needs a real device";
  cuda::synchronize();
  const int64_t start = cuda::memory_allocated();
  cuda::reset_peak_memory_stats();
  auto train_step = [] {
    auto model = nn::make<nn::Sequential>(
        nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 3, .out_channels = 8, .kernel_size = 3, .padding = 1}),
        nn::make<nn::BatchNorm2d>(8), nn::make<nn::ReLU>(), nn::make<nn::AdaptiveAvgPool2d>(1), nn::make<nn::Flatten>(),
        nn::make<nn::Linear>(8, 10));
    model->to(Device::cuda());
    optim::Adam opt(model->parameters(), {.lr = 1e-3});
    Tensor x = randn({16, 3, 16, 16}).to(Device::cuda()), y = randint(0, 10, {16}).to(Device::cuda());
    Tensor loss = F::cross_entropy(model(x), y);
    loss.backward();
    opt.step();
    cuda::synchronize();
    EXPECT_GT(cuda::memory_allocated(), 0);
    cuda::MemoryStats s = cuda::memory_stats();
    EXPECT_EQ(s.allocated, cuda::memory_allocated());
    EXPECT_GE(s.reserved, s.allocated);
    EXPECT_GE(s.peak_allocated, s.allocated);
    EXPECT_GT(s.num_allocs, 0);
    EXPECT_LE(s.num_device_allocs, s.num_allocs);
  };
  train_step();
  cuda::synchronize();
  EXPECT_EQ(cuda::memory_allocated(), start);
  EXPECT_GT(cuda::max_memory_allocated(), start);
  EXPECT_GE(cuda::memory_reserved(), cuda::memory_allocated());
  // The same step again is served from the cache: no new cudaMalloc.
  const int64_t device_allocs = cuda::memory_stats().num_device_allocs;
  train_step();
  cuda::synchronize();
  EXPECT_EQ(cuda::memory_allocated(), start);
  EXPECT_EQ(cuda::memory_stats().num_device_allocs, device_allocs);
  // empty_cache hands the unused blocks back.
  const int64_t reserved = cuda::memory_reserved();
  cuda::empty_cache();
  EXPECT_LE(cuda::memory_reserved(), reserved);
  if (cuda::memory_allocated() == 0) {
    EXPECT_EQ(cuda::memory_reserved(), 0);
  }
  cuda::reset_peak_memory_stats();
  EXPECT_EQ(cuda::max_memory_allocated(), cuda::memory_allocated());
}

TEST_F(Cuda, DeviceQueries) {
  if (kDryRun) GTEST_SKIP() << "needs a real device";
  EXPECT_TRUE(cuda::is_available());
  EXPECT_GE(cuda::device_count(), 1);
  EXPECT_NO_THROW(cuda::synchronize());
  Tensor t = zeros({2}, {.device = Device::cuda()});
  EXPECT_EQ(t.device(), Device::cuda(0));
  EXPECT_TRUE(t.is_cuda());
  // A device index past the last one is an nnkit::Error, not a crash.
  EXPECT_NE(error_of([&] { zeros({2}, {.device = Device::cuda(cuda::device_count())}); }), "<no error>");
}

// rand/randn on the device draw from the same Philox counters as the CPU: a seed gives the same
// numbers on both (float64 Box-Muller on both sides; equal to the last bits or within 1e-12).
TEST_F(Cuda, RandomFillsMatchTheCpuStream) {
  for (Dtype dt : {kFloat32, kFloat64}) {
    manual_seed(7);
    Tensor uc = rand({1001}, {.dtype = dt}), nc = randn({3, 333}, {.dtype = dt});
    manual_seed(7);
    Tensor ug = rand({1001}, {.dtype = dt, .device = dev()}),
           ng = randn({3, 333}, {.dtype = dt, .device = dev()});
    EXPECT_TRUE(close(uc, ug, 0)) << dt;
    EXPECT_TRUE(close(nc, ng, dt == kFloat32 ? 1e-6 : 1e-12)) << dt;
  }
}
