// Shared helpers of the CUDA suite (tests/cuda/*_test.cpp, one file per family as in src/ and
// cuda/). The CUDA backend against the CPU: every op, layer and optimizer run on both devices with the
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
#pragma once

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

namespace cuda_test {

#ifdef NNKIT_CUDA_TEST_DRY_RUN
inline constexpr bool kDryRun = true;
#else
inline constexpr bool kDryRun = false;
#endif

// The device under test.
inline Device dev() { return kDryRun ? Device::cpu() : Device::cuda(); }
inline const Device kCpu = Device::cpu();
inline const Dtype kFloatTypes[] = {kFloat32, kFloat64};

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

inline double default_tol(Dtype d) { return d == kFloat64 ? 1e-10 : d == kFloat32 ? 1e-5 : 0; }

// `gpu` (a result computed on the device) against `cpu`: same shape and dtype, on the device, and
// max |cpu - gpu| <= tol * max |cpu| over the finite elements (tol < 0: by dtype; integers and
// bools exactly); NaN and inf where the CPU has them. Both undefined is a match.
inline ::testing::AssertionResult close(const Tensor& cpu, const Tensor& gpu, double tol = -1) {
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
inline TensorList copy_inputs(const TensorList& inputs, Device device) {
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
inline TensorList upstream(const TensorList& outputs) {
  TensorList g;
  for (auto& o : outputs)
    g.push_back(o.defined() && o.requires_grad() ? randn(o.sizes(), {.dtype = o.dtype()}) : Tensor());
  return g;
}

// Backward from the first output with its upstream gradient (moved to the output's device).
inline void backward_first(const TensorList& outputs, const TensorList& grads) {
  if (grads.empty() || !grads[0].defined()) return;
  outputs[0].backward(grads[0].to(outputs[0].device()));
}

// Compares the gradients of the inputs that require grad; returns how many have one on the CPU.
inline int compare_input_grads(const TensorList& inputs, const TensorList& c, const TensorList& g, double tol) {
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
inline void check_op(const std::string& name, const Op& op, const TensorList& inputs, double tol = -1) {
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
inline void check_modules(nn::Module& cpu, nn::Module& gpu, const TensorList& inputs, int steps = 1, double tol = -1) {
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
inline void check_module(const nn::Ptr<>& m, const TensorList& inputs, int steps = 1, double tol = -1) {
  nn::Ptr<> g = m->clone();
  g->to(dev());
  check_modules(*m, *g, inputs, steps, tol);
}

// The same in training and in evaluation mode.
inline void check_train_eval(const std::string& name, const nn::Ptr<>& m, const TensorList& inputs, int steps = 1) {
  for (bool train : {true, false}) {
    SCOPED_TRACE(name + (train ? " (train)" : " (eval)"));
    m->train(train);
    check_module(m, inputs, steps);
  }
}

inline Tensor leaf(const Shape& s, Dtype d = kFloat32) { return randn(s, {.dtype = d, .requires_grad = true}); }
// Values in [0.5, 1.5): for log, sqrt, pow and the like.
inline Tensor pos_leaf(const Shape& s, Dtype d = kFloat32) {
  Tensor t = rand(s, {.dtype = d}) + 0.5;
  t.requires_grad_();
  return t;
}
inline Tensor longs(const std::vector<int64_t>& v) { return from_vector(v); }

// Feeds a strided (permuted) view to the next layer: module inputs reach the device contiguous.
class Permute : public nn::Module {
 public:
  explicit Permute(Shape dims) : dims_(std::move(dims)) {}
  Tensor forward(const Tensor& x) override { return x.permute(dims_); }

 private:
  Shape dims_;
};
inline nn::Ptr<> permuted(const Shape& dims, const nn::Ptr<>& m) { return nn::make<nn::Sequential>(nn::make<Permute>(dims), m); }

}  // namespace cuda_test

using namespace cuda_test;
