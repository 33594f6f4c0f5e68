// Parity with LibTorch: the same random inputs go through nnkit and LibTorch; outputs and
// gradients (for the same random upstream gradient) must agree to a relative error of 1e-5 in
// float32 and 1e-10 in float64. Layers get LibTorch's parameters copied by name, which also
// proves that parameter and buffer names and shapes match. One translation unit on purpose:
// including <torch/torch.h> costs ~19 s and 1 GB of compiler memory.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <nnkit/nnkit.h>
#include <random>

namespace nk = nnkit;
namespace nn = nnkit::nn;
namespace F = nnkit::nn::functional;

namespace {

torch::Tensor to_torch(const nk::Tensor& t) {
  nk::Tensor c = t.detach().contiguous();
  auto dtype = c.dtype() == nk::kFloat32   ? torch::kFloat32
               : c.dtype() == nk::kFloat64 ? torch::kFloat64
               : c.dtype() == nk::kInt64   ? torch::kInt64
                                           : torch::kBool;
  std::vector<int64_t> sizes = c.sizes().vec();
  return torch::from_blob(c.raw_data(), sizes, torch::TensorOptions().dtype(dtype)).clone();
}

double max_abs(const torch::Tensor& t) { return t.numel() ? t.abs().max().item<double>() : 0.0; }

// Relative error of a against the reference b.
double rel_err(const nk::Tensor& a, const torch::Tensor& b) {
  torch::Tensor ta = to_torch(a).to(torch::kFloat64), tb = b.detach().to(torch::kFloat64);
  EXPECT_EQ(ta.sizes(), tb.sizes());
  if (ta.sizes() != tb.sizes()) return 1e30;
  return max_abs(ta - tb) / std::max(max_abs(tb), 1e-6);
}

double tol(nk::Dtype d) { return d == nk::kFloat64 ? 1e-10 : 1e-5; }

std::map<std::string, double>& worst() {
  static std::map<std::string, double> w;
  return w;
}
void record(const std::string& name, double e) { worst()[name] = std::max(worst()[name], e); }

using NkFn = std::function<nk::Tensor(const nk::TensorList&)>;
using TFn = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;

// Runs both sides on the same inputs; compares outputs and the gradients of every input.
void check_op(const std::string& name, const std::vector<nk::Tensor>& inputs, const NkFn& nf, const TFn& tf) {
  std::vector<torch::Tensor> tin;
  nk::TensorList nin;
  for (auto& x : inputs) {
    bool grad = x.is_floating_point();
    nk::Tensor n = x.detach().clone();
    if (grad) n.requires_grad_(true);
    nin.push_back(n);
    torch::Tensor t = to_torch(x);
    if (grad) t.requires_grad_(true);
    tin.push_back(t);
  }
  nk::Tensor no = nf(nin);
  torch::Tensor to = tf(tin);
  double e = rel_err(no, to);
  record(name, e);
  EXPECT_LE(e, tol(no.dtype())) << name << ": output differs";
  // An op that loses its grad_fn must fail here, not skip the gradient comparison.
  ASSERT_EQ(no.requires_grad(), to.requires_grad()) << name << ": requires_grad of the output";
  if (!no.requires_grad()) return;
  nk::Tensor up = nk::randn(no.sizes(), {.dtype = no.dtype()});
  no.backward(up);
  to.backward(to_torch(up));
  for (size_t i = 0; i < nin.size(); ++i) {
    if (!tin[i].requires_grad()) continue;
    ASSERT_EQ(nin[i].grad().defined(), tin[i].grad().defined()) << name << ": gradient presence of input " << i;
    if (!tin[i].grad().defined()) continue;
    double ge = rel_err(nin[i].grad(), tin[i].grad());
    record(name + " (grad)", ge);
    EXPECT_LE(ge, tol(no.dtype())) << name << ": gradient of input " << i << " differs";
  }
}

nk::Tensor R(const nk::Shape& s, nk::Dtype d = nk::kFloat32) { return nk::randn(s, {.dtype = d}); }

struct ParityEnv : ::testing::Environment {
  void TearDown() override {
    std::printf("\nmax relative error vs LibTorch, per op:\n| op | max rel. error |\n|---|---|\n");
    for (auto& [k, v] : worst()) std::printf("| %s | %.2e |\n", k.c_str(), v);
  }
};
[[maybe_unused]] auto* env = ::testing::AddGlobalTestEnvironment(new ParityEnv);

class Parity : public ::testing::TestWithParam<nk::Dtype> {
 protected:
  void SetUp() override {
    nk::manual_seed(1234);
    torch::manual_seed(1234);
  }
};

}  // namespace

TEST_P(Parity, Elementwise) {
  auto d = GetParam();
  std::mt19937 rng(7);
  for (int rep = 0; rep < 3; ++rep) {
    int64_t a = 1 + rng() % 5, b = 1 + rng() % 6;
    check_op("add/sub/mul/div broadcast", {R({a, 1, b}, d), R({3, 1}, d)},
             [](auto& v) { return v[0] + v[1] * 2.0 - v[0] / (v[1].abs() + 1.0) + nk::sub(v[0], v[1], 0.5); },
             [](auto& v) { return v[0] + v[1] * 2.0 - v[0] / (v[1].abs() + 1.0) + torch::sub(v[0], v[1], 0.5); });
  }
  check_op("unary", {R({4, 5}, d)},
           [](auto& v) { return v[0].exp() + v[0].sin() + v[0].cos() + v[0].tanh() + v[0].sigmoid() + v[0].relu() + v[0].neg(); },
           [](auto& v) { return v[0].exp() + v[0].sin() + v[0].cos() + v[0].tanh() + v[0].sigmoid() + v[0].relu() + v[0].neg(); });
  check_op("log/sqrt/rsqrt/abs", {R({6, 3}, d)},
           [](auto& v) { auto p = v[0].abs() + 0.5; return p.log() + p.sqrt() + p.rsqrt() + p.reciprocal(); },
           [](auto& v) { auto p = v[0].abs() + 0.5; return p.log() + p.sqrt() + p.rsqrt() + p.reciprocal(); });
  check_op("gelu/erf", {R({7, 2}, d)}, [](auto& v) { return v[0].gelu() + v[0].gelu("tanh") * 2.0 + v[0].erf(); },
           [](auto& v) { return torch::gelu(v[0]) + torch::gelu(v[0], "tanh") * 2.0 + torch::erf(v[0]); });
  check_op("pow", {R({3, 4}, d), R({4}, d)},
           [](auto& v) { return nk::pow(v[0].abs() + 0.5, v[1]) + v[0].pow(3.0) + (v[0].abs() + 0.1).pow(0.5); },
           [](auto& v) { return torch::pow(v[0].abs() + 0.5, v[1]) + v[0].pow(3.0) + (v[0].abs() + 0.1).pow(0.5); });
  check_op("maximum/minimum/where/clamp", {R({4, 3}, d), R({3}, d)},
           [](auto& v) { return nk::maximum(v[0], v[1]) + nk::minimum(v[0], v[1]) * 3.0 + nk::where(v[0] > 0.0, v[0], v[1]) + v[0].clamp(-0.3, 0.4); },
           [](auto& v) { return torch::maximum(v[0], v[1]) + torch::minimum(v[0], v[1]) * 3.0 + torch::where(v[0] > 0.0, v[0], v[1]) + v[0].clamp(-0.3, 0.4); });
  check_op("strided operands", {R({5, 8}, d), R({8, 5}, d)},
           [](auto& v) { return v[0].t().slice(0, 1, 7, 2) * v[1].slice(0, 1, 7, 2) + v[0].t().slice(0, 0, 3).exp(); },
           [](auto& v) { return v[0].t().slice(0, 1, 7, 2) * v[1].slice(0, 1, 7, 2) + v[0].t().slice(0, 0, 3).exp(); });
}

// Every unary op alone (a sum of several can hide one small term's error), on inputs inside
// its domain: positive for the logarithms and roots, (-1.2, 1.2) for tan.
TEST_P(Parity, UnaryOpsOneByOne) {
  auto d = GetParam();
  enum Domain { Any, Positive, Small };
  struct Case {
    const char* name;
    Domain domain;
    std::function<nk::Tensor(const nk::Tensor&)> nf;
    std::function<torch::Tensor(const torch::Tensor&)> tf;
  };
#define NNKIT_PARITY_UNARY(fn, dom) \
  Case{#fn, dom, [](const nk::Tensor& x) { return x.fn(); }, [](const torch::Tensor& x) { return x.fn(); }}
  const std::vector<Case> cases = {
      NNKIT_PARITY_UNARY(neg, Any),      NNKIT_PARITY_UNARY(abs, Any),        NNKIT_PARITY_UNARY(exp, Any),
      NNKIT_PARITY_UNARY(log, Positive), NNKIT_PARITY_UNARY(log1p, Positive), NNKIT_PARITY_UNARY(expm1, Any),
      NNKIT_PARITY_UNARY(log2, Positive), NNKIT_PARITY_UNARY(log10, Positive), NNKIT_PARITY_UNARY(exp2, Any),
      NNKIT_PARITY_UNARY(tan, Small),    NNKIT_PARITY_UNARY(sqrt, Positive),  NNKIT_PARITY_UNARY(rsqrt, Positive),
      NNKIT_PARITY_UNARY(sin, Any),      NNKIT_PARITY_UNARY(cos, Any),        NNKIT_PARITY_UNARY(tanh, Any),
      NNKIT_PARITY_UNARY(sigmoid, Any),  NNKIT_PARITY_UNARY(relu, Any),       NNKIT_PARITY_UNARY(erf, Any),
      NNKIT_PARITY_UNARY(square, Any),   NNKIT_PARITY_UNARY(reciprocal, Positive), NNKIT_PARITY_UNARY(sign, Any),
      Case{"gelu", Any, [](const nk::Tensor& x) { return x.gelu(); }, [](const torch::Tensor& x) { return torch::gelu(x); }},
      Case{"gelu(tanh)", Any, [](const nk::Tensor& x) { return x.gelu("tanh"); },
           [](const torch::Tensor& x) { return torch::gelu(x, "tanh"); }},
  };
#undef NNKIT_PARITY_UNARY
  for (const Case& c : cases) {
    nk::Tensor x = R({5, 7}, d);
    if (c.domain == Positive) x = x.abs() + 0.25;
    if (c.domain == Small) x = x.tanh() * 1.2;
    check_op(c.name, {x}, [&](auto& v) { return c.nf(v[0]); }, [&](auto& v) { return c.tf(v[0]); });
    // Integer inputs: the same dtype rule as PyTorch (exp of int64 is float32, abs stays int64);
    // LibTorch has no integer gelu (nnkit computes it in float32).
    if (std::string(c.name).rfind("gelu", 0) == 0) continue;
    nk::Tensor xi = (x * 3.0).to(nk::kInt64);
    if (c.domain == Positive) xi = xi.abs() + 1.0;
    nk::Tensor ni = c.nf(xi);
    torch::Tensor ti = c.tf(to_torch(xi));
    EXPECT_EQ(std::string(nk::dtype_name(ni.dtype())), std::string(c10::toString(ti.scalar_type())) == "Long" ? "int64"
              : std::string(c10::toString(ti.scalar_type())) == "Float" ? "float32" : "other")
        << c.name << " on int64";
    EXPECT_LE(rel_err(ni, ti), 1e-5) << c.name << " on int64";
  }
}

TEST_P(Parity, ReductionsViewsJoins) {
  auto d = GetParam();
  check_op("sum/mean", {R({3, 4, 5}, d)},
           [](auto& v) { return v[0].sum({0, 2}) + v[0].mean(2).sum(0) + v[0].sum() + v[0].mean(); },
           [](auto& v) { return v[0].sum(std::vector<int64_t>{0, 2}) + v[0].mean(2).sum(0) + v[0].sum() + v[0].mean(); });
  check_op("var/std", {R({3, 4, 5}, d)},
           [](auto& v) { return v[0].var(2, 1).sum(0) + v[0].std({0, 2}, 0) + v[0].var(1, 0, true).view({3, 5}).sum(); },
           [](auto& v) { return v[0].var(2, 1).sum(0) + v[0].std(std::vector<int64_t>{0, 2}, false) + v[0].var(1, false, true).view({3, 5}).sum(); });
  check_op("amax/max(dim)", {R({4, 6}, d)},
           [](auto& v) { return v[0].amax(1) + std::get<0>(v[0].max(1)) + v[0].amin(1); },
           [](auto& v) { return v[0].amax(1) + std::get<0>(v[0].max(1)) + v[0].amin(1); });
  check_op("argmax", {R({5, 7}, d)}, [](auto& v) { return v[0].argmax(1); }, [](auto& v) { return v[0].argmax(1); });
  check_op("views", {R({2, 3, 4}, d)},
           [](auto& v) { return v[0].permute({2, 0, 1}).reshape({4, 6}).t().slice(0, 1, 5, 2).select(1, 2) * 1.0 + v[0].flatten().narrow(0, 3, 2); },
           [](auto& v) { return v[0].permute({2, 0, 1}).reshape({4, 6}).t().slice(0, 1, 5, 2).select(1, 2) * 1.0 + v[0].flatten().narrow(0, 3, 2); });
  check_op("expand/unsqueeze/squeeze", {R({3, 1}, d)},
           [](auto& v) { return v[0].expand({2, 3, 4}).sum(0).unsqueeze(0).squeeze(0) * 2.0; },
           [](auto& v) { return v[0].expand({2, 3, 4}).sum(0).unsqueeze(0).squeeze(0) * 2.0; });
  check_op("cat/stack", {R({2, 3}, d), R({2, 5}, d)},
           [](auto& v) { return nk::cat({v[0], v[1]}, 1).sum(0) * 2.0 + nk::stack({v[1], v[1] * 3.0}, 1).sum(); },
           [](auto& v) { return torch::cat({v[0], v[1]}, 1).sum(0) * 2.0 + torch::stack({v[1], v[1] * 3.0}, 1).sum(); });
  check_op("softmax/log_softmax", {R({4, 9}, d)},
           [](auto& v) { return v[0].softmax(1) * 3.0 + v[0].log_softmax(0); },
           [](auto& v) { return v[0].softmax(1) * 3.0 + v[0].log_softmax(0); });
}

TEST_P(Parity, Matmul) {
  auto d = GetParam();
  std::vector<std::pair<nk::Shape, nk::Shape>> shapes = {{{7}, {7}},       {{3, 7}, {7}},          {{7}, {7, 4}},
                                                         {{5, 7}, {7, 4}}, {{2, 5, 7}, {7, 4}},    {{2, 1, 5, 7}, {3, 7, 4}},
                                                         {{64, 96}, {96, 80}}};
  for (auto& [a, b] : shapes)
    check_op("matmul", {R(a, d), R(b, d)}, [](auto& v) { return v[0].matmul(v[1]); },
             [](auto& v) { return v[0].matmul(v[1]); });
  check_op("mm transposed", {R({6, 5}, d), R({4, 6}, d)}, [](auto& v) { return v[0].t().mm(v[1].t()); },
           [](auto& v) { return v[0].t().mm(v[1].t()); });
  check_op("bmm", {R({3, 4, 5}, d), R({3, 5, 2}, d)}, [](auto& v) { return v[0].bmm(v[1]); },
           [](auto& v) { return v[0].bmm(v[1]); });
}

TEST_P(Parity, FunctionalLayers) {
  auto d = GetParam();
  struct ConvCase {
    nk::Shape x, w;
    F::Conv2dFuncOptions o;
  };
  std::vector<ConvCase> cases = {
      {{2, 3, 9, 9}, {4, 3, 3, 3}, {}},
      {{2, 4, 10, 7}, {6, 4, 3, 3}, {.stride = 2, .padding = 1}},
      {{1, 4, 8, 8}, {4, 2, 3, 3}, {.stride = 1, .padding = {2, 1}, .dilation = 2, .groups = 2}},
      {{3, 6, 5, 5}, {8, 6, 1, 1}, {}},
      {{2, 3, 7, 6}, {5, 3, 2, 3}, {.stride = {2, 1}, .padding = {1, 0}}},
  };
  for (auto& c : cases) {
    auto o = c.o;
    check_op("conv2d", {R(c.x, d), R(c.w, d), R({c.w[0]}, d)}, [o](auto& v) { return F::conv2d(v[0], v[1], v[2], o); },
             [o](auto& v) {
               return torch::conv2d(v[0], v[1], v[2], {o.stride.h, o.stride.w}, {o.padding.h, o.padding.w},
                                    {o.dilation.h, o.dilation.w}, o.groups);
             });
  }
  check_op("max_pool2d", {R({2, 3, 9, 8}, d)},
           [](auto& v) { return F::max_pool2d(v[0], {.kernel_size = 3, .stride = 2, .padding = 1}); },
           [](auto& v) { return torch::max_pool2d(v[0], {3, 3}, {2, 2}, {1, 1}); });
  check_op("max_pool2d ceil", {R({1, 2, 7, 7}, d)},
           [](auto& v) { return F::max_pool2d(v[0], {.kernel_size = 2, .ceil_mode = true}); },
           [](auto& v) { return torch::max_pool2d(v[0], {2, 2}, {2, 2}, {0, 0}, {1, 1}, true); });
  check_op("avg_pool2d", {R({2, 3, 9, 8}, d)},
           [](auto& v) { return F::avg_pool2d(v[0], {.kernel_size = 3, .stride = 2, .padding = 1}); },
           [](auto& v) { return torch::avg_pool2d(v[0], {3, 3}, {2, 2}, {1, 1}); });
  check_op("adaptive_avg_pool2d", {R({2, 3, 10, 7}, d)}, [](auto& v) { return F::adaptive_avg_pool2d(v[0], {3, 4}); },
           [](auto& v) { return torch::adaptive_avg_pool2d(v[0], {3, 4}); });
  check_op("group_norm", {R({2, 6, 4, 3}, d), R({6}, d), R({6}, d)},
           [](auto& v) { return F::group_norm(v[0], 3, v[1], v[2]); },
           [](auto& v) { return torch::group_norm(v[0], 3, v[1], v[2]); });
  check_op("layer_norm", {R({4, 5, 6}, d), R({5, 6}, d), R({5, 6}, d)},
           [](auto& v) { return F::layer_norm(v[0], {5, 6}, v[1], v[2]); },
           [](auto& v) { return torch::layer_norm(v[0], {5, 6}, v[1], v[2]); });
  nk::Tensor target = nk::randint(0, 5, {8});
  target[2].fill_(-100);
  nk::Tensor cw = nk::rand({5}, {.dtype = d}) + 0.5;
  torch::Tensor ttarget = to_torch(target), tcw = to_torch(cw);
  check_op("cross_entropy", {R({8, 5}, d)}, [&](auto& v) { return F::cross_entropy(v[0], target); },
           [&](auto& v) { return torch::nn::functional::cross_entropy(v[0], ttarget); });
  check_op("cross_entropy weight+smoothing", {R({8, 5}, d)},
           [&](auto& v) { return F::cross_entropy(v[0], target, {.weight = cw, .label_smoothing = 0.2}); },
           [&](auto& v) {
             return torch::nn::functional::cross_entropy(
                 v[0], ttarget, torch::nn::functional::CrossEntropyFuncOptions().weight(tcw).label_smoothing(0.2));
           });
  nk::Tensor probs = nk::rand({8, 5}, {.dtype = d}).softmax(1);
  torch::Tensor tprobs = to_torch(probs);
  check_op("cross_entropy probabilities", {R({8, 5}, d)}, [&](auto& v) { return F::cross_entropy(v[0], probs); },
           [&](auto& v) { return torch::nn::functional::cross_entropy(v[0], tprobs); });
  check_op("mse/l1", {R({4, 3}, d), R({4, 3}, d)},
           [](auto& v) { return F::mse_loss(v[0], v[1]) + F::l1_loss(v[0], v[1], F::Reduction::Sum); },
           [](auto& v) { return torch::mse_loss(v[0], v[1]) + torch::l1_loss(v[0], v[1], at::Reduction::Sum); });
}

namespace {
// Copies LibTorch's parameters and buffers into the nnkit module by name; the name sets must match.
void copy_state(nn::Module& nkm, torch::nn::Module& tm) {
  auto tp = tm.named_parameters(true);
  auto tb = tm.named_buffers(true);
  std::vector<std::string> tnames;
  for (auto& p : tp) tnames.push_back(p.key());
  for (auto& b : tb) tnames.push_back(b.key());
  auto sd = nkm.state_dict();
  std::vector<std::string> nnames = sd.keys();
  std::sort(tnames.begin(), tnames.end());
  std::sort(nnames.begin(), nnames.end());
  ASSERT_EQ(nnames, tnames) << "parameter/buffer names differ from LibTorch's";
  nk::StateDict src;
  for (auto& p : tp) src.insert(p.key(), nk::from_blob(p.value().data_ptr(), p.value().sizes().vec(), sd.at(p.key()).dtype()).clone());
  for (auto& b : tb) {
    auto v = b.value().contiguous();
    src.insert(b.key(), nk::from_blob(v.data_ptr(), v.sizes().vec(), sd.at(b.key()).dtype()).clone());
  }
  nkm.load_state_dict(src);
}
}  // namespace

TEST(ParityLayers, BatchNormRunningStatsAndModes) {
  nk::manual_seed(3);
  auto nb = nn::make<nn::BatchNorm2d>(4);
  torch::nn::BatchNorm2d tb(4);
  copy_state(*nb, *tb);
  for (int step = 0; step < 4; ++step) {
    nk::Tensor x = nk::randn({3, 4, 5, 5});
    nk::Tensor xn = x.clone().requires_grad_(true);
    torch::Tensor xt = to_torch(x).requires_grad_(true);
    nk::Tensor yn = nb(xn);
    torch::Tensor yt = tb(xt);
    EXPECT_LE(rel_err(yn, yt), 1e-5);
    nk::Tensor up = nk::randn(yn.sizes());
    yn.backward(up);
    yt.backward(to_torch(up));
    EXPECT_LE(rel_err(xn.grad(), xt.grad()), 1e-5);
    EXPECT_LE(rel_err(nb->weight.grad(), tb->weight.grad()), 1e-5);
  }
  EXPECT_LE(rel_err(nb->running_mean, tb->running_mean), 1e-5);
  EXPECT_LE(rel_err(nb->running_var, tb->running_var), 1e-5);
  EXPECT_EQ(nb->num_batches_tracked.item<int64_t>(), tb->num_batches_tracked.item<int64_t>());
  nb->eval();
  tb->eval();
  nk::Tensor x = nk::randn({2, 4, 3, 3});
  EXPECT_LE(rel_err(nb(x), tb(to_torch(x))), 1e-5);
}

TEST(ParityLayers, LinearConvDefaultInitDistributions) {
  // Same seed-independent law: every weight within PyTorch's bound 1/sqrt(fan_in), and the
  // empirical std matching a uniform on that interval.
  auto conv = nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 16, .out_channels = 64, .kernel_size = 3});
  double bound = 1.0 / std::sqrt(16.0 * 9);
  EXPECT_LE(conv->weight.abs().max().item<double>(), bound);
  EXPECT_NEAR(conv->weight.std().item<double>(), bound / std::sqrt(3.0), 0.05 * bound);
  torch::nn::Conv2d tc(torch::nn::Conv2dOptions(16, 64, 3));
  EXPECT_NEAR(tc->weight.std().item<double>(), conv->weight.std().item<double>(), 0.05 * bound);
}

TEST(ParityLayers, ResNetBlockForwardBackward) {
  struct NkBlock : nn::Module {
    NkBlock() {
      conv1 = register_module<nn::Conv2d>("conv1", {.in_channels = 8, .out_channels = 16, .kernel_size = 3, .stride = 2, .padding = 1, .bias = false});
      bn1 = register_module<nn::BatchNorm2d>("bn1", 16);
      conv2 = register_module<nn::Conv2d>("conv2", {.in_channels = 16, .out_channels = 16, .kernel_size = 3, .padding = 1, .bias = false});
      bn2 = register_module<nn::BatchNorm2d>("bn2", 16);
      down = register_module("down", nn::make<nn::Sequential>(
                                         nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 8, .out_channels = 16, .kernel_size = 1, .stride = 2, .bias = false}),
                                         nn::make<nn::BatchNorm2d>(16)));
    }
    nk::Tensor forward(const nk::Tensor& x) override { return (bn2(conv2(bn1(conv1(x)).relu())) + down(x)).relu(); }
    nn::Ptr<nn::Conv2d> conv1, conv2;
    nn::Ptr<nn::BatchNorm2d> bn1, bn2;
    nn::Ptr<nn::Sequential> down;
  };
  struct TBlock : torch::nn::Module {
    TBlock() {
      conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 16, 3).stride(2).padding(1).bias(false)));
      bn1 = register_module("bn1", torch::nn::BatchNorm2d(16));
      conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 16, 3).padding(1).bias(false)));
      bn2 = register_module("bn2", torch::nn::BatchNorm2d(16));
      down = register_module("down", torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 16, 1).stride(2).bias(false)),
                                                           torch::nn::BatchNorm2d(16)));
    }
    torch::Tensor forward(torch::Tensor x) { return torch::relu(bn2(conv2(torch::relu(bn1(conv1(x))))) + down->forward(x)); }
    torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
    torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
    torch::nn::Sequential down{nullptr};
  };
  auto nb = nn::make<NkBlock>();
  auto tb = std::make_shared<TBlock>();
  copy_state(*nb, *tb);
  nk::Tensor x = nk::randn({4, 8, 12, 12});
  nk::Tensor xn = x.clone().requires_grad_(true);
  torch::Tensor xt = to_torch(x).requires_grad_(true);
  nk::Tensor yn = nb(xn);
  torch::Tensor yt = tb->forward(xt);
  EXPECT_LE(rel_err(yn, yt), 1e-5);
  nk::Tensor up = nk::randn(yn.sizes());
  yn.backward(up);
  yt.backward(to_torch(up));
  EXPECT_LE(rel_err(xn.grad(), xt.grad()), 1e-5);
  auto tparams = tb->named_parameters(true);
  for (auto& [name, p] : nb->named_parameters()) {
    double e = rel_err(p.grad(), tparams[name].grad());
    record("resnet block param grads", e);
    EXPECT_LE(e, 1e-5) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, Parity, ::testing::Values(nk::kFloat32, nk::kFloat64),
                         [](const auto& info) { return std::string(nk::dtype_name(info.param)); });

// ---- optimizers: 25 steps of nnkit's and LibTorch's update rules on the same gradients ----
namespace {
template <typename MakeNk, typename MakeTorch>
double optimizer_run(const std::string& name, MakeNk make_nk, MakeTorch make_torch, nk::Dtype dt = nk::kFloat32) {
  nk::manual_seed(77);
  std::vector<nk::Tensor> np = {R({4, 3}, dt).requires_grad_(), R({3}, dt).requires_grad_()};
  std::vector<torch::Tensor> tp;
  for (auto& p : np) tp.push_back(to_torch(p.detach()).clone().requires_grad_(true));
  auto nopt = make_nk(np);
  auto topt = make_torch(tp);
  double worst_err = 0;
  for (int step = 0; step < 25; ++step) {
    for (size_t i = 0; i < np.size(); ++i) {
      nk::Tensor g = R(np[i].sizes(), dt) * (1.0 + step % 3);
      np[i].set_grad(g);
      tp[i].mutable_grad() = to_torch(g).clone();
    }
    nopt->step();
    topt->step();
    for (size_t i = 0; i < np.size(); ++i) worst_err = std::max(worst_err, rel_err(np[i].detach(), tp[i].detach()));
  }
  record("optim " + name, worst_err);
  return worst_err;
}
}  // namespace

TEST(ParityOptim, TwentyFiveStepsMatchLibTorch) {
  using namespace nk::optim;
  struct Case {
    std::string name;
    std::function<std::unique_ptr<Optimizer>(nk::TensorList)> nk;
    std::function<std::unique_ptr<torch::optim::Optimizer>(std::vector<torch::Tensor>)> th;
  };
  std::vector<Case> cases = {
      {"SGD momentum+wd", [](nk::TensorList p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.05, .momentum = 0.9, .dampening = 0.1, .weight_decay = 1e-3}); },
       [](std::vector<torch::Tensor> p) { return std::make_unique<torch::optim::SGD>(p, torch::optim::SGDOptions(0.05).momentum(0.9).dampening(0.1).weight_decay(1e-3)); }},
      {"SGD nesterov", [](nk::TensorList p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.05, .momentum = 0.8, .nesterov = true}); },
       [](std::vector<torch::Tensor> p) { return std::make_unique<torch::optim::SGD>(p, torch::optim::SGDOptions(0.05).momentum(0.8).nesterov(true)); }},
      {"Adam", [](nk::TensorList p) { return std::make_unique<Adam>(p, AdamOptions{.lr = 0.01, .weight_decay = 1e-2}); },
       [](std::vector<torch::Tensor> p) { return std::make_unique<torch::optim::Adam>(p, torch::optim::AdamOptions(0.01).weight_decay(1e-2)); }},
      {"Adam amsgrad", [](nk::TensorList p) { return std::make_unique<Adam>(p, AdamOptions{.lr = 0.01, .beta1 = 0.8, .beta2 = 0.99, .amsgrad = true}); },
       [](std::vector<torch::Tensor> p) { return std::make_unique<torch::optim::Adam>(p, torch::optim::AdamOptions(0.01).betas({0.8, 0.99}).amsgrad(true)); }},
      {"AdamW", [](nk::TensorList p) { return std::make_unique<AdamW>(p, AdamWOptions{.lr = 0.01, .weight_decay = 0.1}); },
       [](std::vector<torch::Tensor> p) { return std::make_unique<torch::optim::AdamW>(p, torch::optim::AdamWOptions(0.01).weight_decay(0.1)); }},
      {"AdamW amsgrad", [](nk::TensorList p) { return std::make_unique<AdamW>(p, AdamWOptions{.lr = 0.02, .amsgrad = true}); },
       [](std::vector<torch::Tensor> p) { return std::make_unique<torch::optim::AdamW>(p, torch::optim::AdamWOptions(0.02).amsgrad(true)); }},
      {"RMSprop", [](nk::TensorList p) { return std::make_unique<RMSprop>(p, RMSpropOptions{.lr = 0.01, .weight_decay = 1e-3}); },
       [](std::vector<torch::Tensor> p) { return std::make_unique<torch::optim::RMSprop>(p, torch::optim::RMSpropOptions(0.01).weight_decay(1e-3)); }},
      {"RMSprop centered+momentum", [](nk::TensorList p) { return std::make_unique<RMSprop>(p, RMSpropOptions{.lr = 0.01, .alpha = 0.9, .momentum = 0.5, .centered = true}); },
       [](std::vector<torch::Tensor> p) { return std::make_unique<torch::optim::RMSprop>(p, torch::optim::RMSpropOptions(0.01).alpha(0.9).momentum(0.5).centered(true)); }},
  };
  for (auto& c : cases) {
    for (nk::Dtype dt : {nk::kFloat32, nk::kFloat64}) {
      double e = optimizer_run(c.name, c.nk, c.th, dt);
      EXPECT_LE(e, dt == nk::kFloat64 ? 1e-12 : 1e-6) << c.name << " " << dt;
    }
  }
}

// ---- indexing, padding, and more layers (conv.h, normalization.h, attention.h, loss.h, ...) ----
namespace {
// The same module in both libraries (state copied from LibTorch's): output, input gradients
// and parameter gradients compared.
void check_module(const std::string& name, nn::Module& nm, torch::nn::Module& tm, const nk::TensorList& inputs,
                  const std::function<nk::Tensor(const nk::TensorList&)>& nf,
                  const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& tf) {
  copy_state(nm, tm);
  nk::TensorList nin;
  std::vector<torch::Tensor> tin;
  for (auto& x : inputs) {
    bool grad = x.is_floating_point();
    nk::Tensor n = x.detach().clone();
    torch::Tensor t = to_torch(x);
    if (grad) {
      n.requires_grad_(true);
      t.requires_grad_(true);
    }
    nin.push_back(n);
    tin.push_back(t);
  }
  nk::Tensor yn = nf(nin);
  torch::Tensor yt = tf(tin);
  double e = rel_err(yn, yt);
  record(name, e);
  EXPECT_LE(e, 1e-5) << name;
  nk::Tensor up = nk::randn(yn.sizes());
  yn.backward(up);
  yt.backward(to_torch(up));
  for (size_t i = 0; i < nin.size(); ++i)
    if (tin[i].requires_grad()) {
      double ge = rel_err(nin[i].grad(), tin[i].grad());
      record(name + " (input grad)", ge);
      EXPECT_LE(ge, 1e-5) << name << " input " << i;
    }
  auto tp = tm.named_parameters(true);
  for (auto& [pname, p] : nm.named_parameters()) {
    double ge = rel_err(p.grad(), tp[pname].grad());
    record(name + " (param grad)", ge);
    EXPECT_LE(ge, 1e-5) << name << " " << pname;
  }
}
nk::Tensor Idx(const nk::Shape& s, int64_t n) { return nk::randint(0, n, s); }
}  // namespace

TEST_P(Parity, IndexingAndPadding) {
  auto d = GetParam();
  nk::Tensor idx = nk::from_vector(std::vector<int64_t>{2, 0, 2, 3, -1});
  check_op("index_select", {R({3, 4, 5}, d), idx},
           [](auto& v) { return nk::index_select(v[0], 2, v[1]); },
           [](auto& v) { return torch::index_select(v[0], 2, torch::where(v[1] < 0, v[1] + 5, v[1])); });
  nk::Tensor gidx = Idx({3, 2, 5}, 4);
  check_op("gather", {R({3, 4, 5}, d), gidx}, [](auto& v) { return nk::gather(v[0], 1, v[1]); },
           [](auto& v) { return torch::gather(v[0], 1, v[1]); });
  check_op("scatter_add", {R({3, 4, 5}, d), gidx, R({3, 2, 5}, d)},
           [](auto& v) { return nk::scatter_add(v[0], 1, v[1], v[2]); },
           [](auto& v) { return torch::scatter_add(v[0], 1, v[1], v[2]); });
  check_op("index_add", {R({6, 3}, d), idx.narrow(0, 0, 4), R({4, 3}, d)},
           [](auto& v) { return nk::index_add(v[0], 0, v[1], v[2]); },
           [](auto& v) { return v[0].index_add(0, v[1], v[2]); });
  check_op("flip", {R({3, 4, 5}, d)}, [](auto& v) { return nk::flip(v[0], {0, 2}); },
           [](auto& v) { return torch::flip(v[0], {0, 2}); });
  for (std::string mode : {"constant", "reflect", "replicate", "circular"}) {
    check_op("pad " + mode, {R({2, 3, 5, 6}, d)}, [mode](auto& v) { return nk::pad(v[0], {2, 1, 1, 3}, mode, 0.5); },
             [mode](auto& v) {
               auto o = torch::nn::functional::PadFuncOptions({2, 1, 1, 3});
               if (mode == "constant") o.mode(torch::kConstant).value(0.5);
               if (mode == "reflect") o.mode(torch::kReflect);
               if (mode == "replicate") o.mode(torch::kReplicate);
               if (mode == "circular") o.mode(torch::kCircular);
               return torch::nn::functional::pad(v[0], o);
             });
  }
  check_op("pad crop", {R({2, 5, 6}, d)}, [](auto& v) { return nk::pad(v[0], {-1, 2, 0, -2}); },
           [](auto& v) { return torch::nn::functional::pad(v[0], torch::nn::functional::PadFuncOptions({-1, 2, 0, -2})); });
  check_op("log1p expm1", {R({7}, d)}, [](auto& v) { return nk::log1p(v[0].abs()) + nk::expm1(v[0]); },
           [](auto& v) { return torch::log1p(v[0].abs()) + torch::expm1(v[0]); });
  check_op("bilinear", {R({4, 3}, d), R({4, 5}, d), R({2, 3, 5}, d), R({2}, d)},
           [](auto& v) { return F::bilinear(v[0], v[1], v[2], v[3]); },
           [](auto& v) { return torch::bilinear(v[0], v[1], v[2], v[3]); });
  check_op("embedding", {Idx({2, 5}, 7), R({7, 3}, d)}, [](auto& v) { return F::embedding(v[0], v[1]); },
           [](auto& v) { return torch::embedding(v[1], v[0]); });
  check_op("embedding padding_idx", {nk::from_vector(std::vector<int64_t>{1, 2, 1, 0}), R({4, 3}, d)},
           [](auto& v) { return F::embedding(v[0], v[1], 1); },
           [](auto& v) { return torch::embedding(v[1], v[0], 1); });
  check_op("instance_norm", {R({2, 3, 4, 5}, d), R({3}, d), R({3}, d)},
           [](auto& v) { return F::instance_norm(v[0], v[1], v[2]); },
           [](auto& v) { return torch::instance_norm(v[0], v[1], v[2], {}, {}, true, 0.1, 1e-5, false); });
  check_op("leaky_relu silu", {R({9}, d)}, [](auto& v) { return F::leaky_relu(v[0], 0.2) + F::silu(v[0]); },
           [](auto& v) { return torch::leaky_relu(v[0], 0.2) + torch::silu(v[0]); });
  nk::Tensor probs = nk::rand({3, 4}, {.dtype = d}) * 0.9 + 0.05, tgt = nk::rand({3, 4}, {.dtype = d});
  nk::Tensor bw = R({4}, d).abs();
  torch::Tensor tt = to_torch(tgt), tbw = to_torch(bw);
  check_op("binary_cross_entropy", {probs}, [=](auto& v) { return F::binary_cross_entropy(v[0], tgt, bw); },
           [=](auto& v) { return torch::binary_cross_entropy(v[0], tt, tbw.expand_as(v[0])); });
  nk::Tensor pw = R({4}, d).abs();
  torch::Tensor tpw = to_torch(pw);
  check_op("bce_with_logits", {R({3, 4}, d) * 4.0, tgt},
           [=](auto& v) { return F::binary_cross_entropy_with_logits(v[0], v[1], bw, pw, F::Reduction::Sum); },
           [=](auto& v) { return torch::binary_cross_entropy_with_logits(v[0], v[1], tbw, tpw, at::Reduction::Sum); });
}

TEST(ParityLayers, ConvPaddingModesConv1dAndMore) {
  nk::manual_seed(9);
  for (std::string mode : {"zeros", "reflect", "replicate", "circular"}) {
    auto nm = nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 3, .out_channels = 4, .kernel_size = {3, 2},
                                                       .padding = "same", .dilation = {1, 2}, .padding_mode = mode});
    auto o = torch::nn::Conv2dOptions(3, 4, {3, 2}).padding(torch::kSame).dilation({1, 2});
    if (mode == "reflect") o.padding_mode(torch::kReflect);
    if (mode == "replicate") o.padding_mode(torch::kReplicate);
    if (mode == "circular") o.padding_mode(torch::kCircular);
    torch::nn::Conv2d tm(o);
    check_module("Conv2d same " + mode, *nm, *tm, {nk::randn({2, 3, 6, 7})}, [&](auto& v) { return nm(v[0]); },
                 [&](auto& v) { return tm(v[0]); });
  }
  {
    auto nm = nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 2, .out_channels = 2, .kernel_size = 3, .stride = 2,
                                                       .padding = 1, .padding_mode = "reflect"});
    torch::nn::Conv2d tm(torch::nn::Conv2dOptions(2, 2, 3).stride(2).padding(1).padding_mode(torch::kReflect));
    check_module("Conv2d stride 2 reflect", *nm, *tm, {nk::randn({1, 2, 7, 8})}, [&](auto& v) { return nm(v[0]); },
                 [&](auto& v) { return tm(v[0]); });
  }
  {
    auto nm = nn::make<nn::Conv1d>(nn::Conv1d::Options{.in_channels = 4, .out_channels = 6, .kernel_size = 3, .stride = 2,
                                                       .padding = 1, .dilation = 2, .groups = 2});
    torch::nn::Conv1d tm(torch::nn::Conv1dOptions(4, 6, 3).stride(2).padding(1).dilation(2).groups(2));
    check_module("Conv1d", *nm, *tm, {nk::randn({3, 4, 11})}, [&](auto& v) { return nm(v[0]); },
                 [&](auto& v) { return tm(v[0]); });
    EXPECT_EQ(nm->repr(), "Conv1d(4, 6, kernel_size=(3,), stride=(2,), padding=(1,), dilation=(2,), groups=2)");
  }
  {
    auto nm = nn::make<nn::Conv1d>(nn::Conv1d::Options{.in_channels = 2, .out_channels = 3, .kernel_size = 4, .padding = "same",
                                                       .padding_mode = "circular"});
    torch::nn::Conv1d tm(torch::nn::Conv1dOptions(2, 3, 4).padding(torch::kSame).padding_mode(torch::kCircular));
    check_module("Conv1d same circular", *nm, *tm, {nk::randn({2, 2, 9})}, [&](auto& v) { return nm(v[0]); },
                 [&](auto& v) { return tm(v[0]); });
  }
  {
    auto nm = nn::make<nn::Bilinear>(3, 4, 5);
    torch::nn::Bilinear tm(3, 4, 5);
    check_module("Bilinear", *nm, *tm, {nk::randn({6, 3}), nk::randn({6, 4})},
                 [&](auto& v) { return nm->forward(v[0], v[1]); }, [&](auto& v) { return tm(v[0], v[1]); });
    EXPECT_EQ(nm->repr(), "Bilinear(in1_features=3, in2_features=4, out_features=5, bias=True)");
  }
  {
    auto nm = nn::make<nn::Embedding>(nn::Embedding::Options{.num_embeddings = 10, .embedding_dim = 4, .padding_idx = 0});
    torch::nn::Embedding tm(torch::nn::EmbeddingOptions(10, 4).padding_idx(0));
    check_module("Embedding padding_idx", *nm, *tm, {nk::from_vector(std::vector<int64_t>{0, 3, 3, 9, 0, 1})},
                 [&](auto& v) { return nm(v[0]); }, [&](auto& v) { return tm(v[0]); });
    EXPECT_EQ(nm->repr(), "Embedding(10, 4, padding_idx=0)");
  }
  {
    auto nm = nn::make<nn::InstanceNorm2d>(3, 1e-5, true);
    torch::nn::InstanceNorm2d tm(torch::nn::InstanceNorm2dOptions(3).affine(true));
    check_module("InstanceNorm2d affine", *nm, *tm, {nk::randn({2, 3, 4, 4})}, [&](auto& v) { return nm(v[0]); },
                 [&](auto& v) { return tm(v[0]); });
    EXPECT_EQ(nm->repr(), "InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=False)");
  }
  // Reprs of the parameterless modules, as PyTorch prints them.
  EXPECT_EQ(nn::make<nn::LeakyReLU>(0.2)->repr(), "LeakyReLU(negative_slope=0.2)");
  EXPECT_EQ(nn::make<nn::SiLU>()->repr(), "SiLU()");
  EXPECT_EQ(nn::make<nn::Softmax>(1)->repr(), "Softmax(dim=1)");
  EXPECT_EQ(nn::make<nn::LogSoftmax>(-1)->repr(), "LogSoftmax(dim=-1)");
  EXPECT_EQ(nn::make<nn::Dropout2d>(0.25)->repr(), "Dropout2d(p=0.25, inplace=False)");
  EXPECT_EQ(nn::make<nn::Unflatten>(1, nk::Shape{2, 3})->repr(), "Unflatten(dim=1, unflattened_size=(2, 3))");
  EXPECT_EQ(nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 1, .out_channels = 1, .kernel_size = 3, .padding = "same", .padding_mode = "reflect"})->repr(),
            "Conv2d(1, 1, kernel_size=(3, 3), stride=(1, 1), padding=same, padding_mode=reflect)");
}

TEST(ParityLayers, ConvTranspose2dAndMultiheadAttention) {
  nk::manual_seed(31);
  struct TC {
    int64_t cin, cout, k, stride, pad, outpad, groups, dil;
  };
  for (TC c : {TC{3, 4, 3, 2, 1, 1, 1, 1}, TC{4, 6, 2, 1, 0, 0, 2, 1}, TC{2, 2, 3, 3, 2, 1, 1, 2}, TC{4, 4, 1, 2, 0, 0, 4, 1}}) {
    auto nm = nn::make<nn::ConvTranspose2d>(nn::ConvTranspose2d::Options{
        .in_channels = c.cin, .out_channels = c.cout, .kernel_size = c.k, .stride = c.stride, .padding = c.pad,
        .output_padding = c.outpad, .groups = c.groups, .dilation = c.dil});
    torch::nn::ConvTranspose2d tm(torch::nn::ConvTranspose2dOptions(c.cin, c.cout, c.k)
                                      .stride(c.stride).padding(c.pad).output_padding(c.outpad).groups(c.groups)
                                      .dilation(c.dil));
    check_module("ConvTranspose2d", *nm, *tm, {nk::randn({2, c.cin, 5, 4})}, [&](auto& v) { return nm(v[0]); },
                 [&](auto& v) { return tm(v[0]); });
  }
  EXPECT_EQ(nn::make<nn::ConvTranspose2d>(nn::ConvTranspose2d::Options{.in_channels = 4, .out_channels = 2, .kernel_size = 3,
                                                                       .stride = 2, .padding = 1, .output_padding = 1})
                ->repr(),
            "ConvTranspose2d(4, 2, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))");

  // MultiheadAttention: self-attention with a causal float mask, and cross-attention with a
  // key padding mask; outputs, averaged weights and all gradients.
  auto nm = nn::make<nn::MultiheadAttention>(8, 2);
  torch::nn::MultiheadAttention tm(torch::nn::MultiheadAttentionOptions(8, 2));
  const int64_t L = 4, S = 5, N = 3;
  nk::Tensor causal = nk::where(nk::arange(L).unsqueeze(1) < nk::arange(L).unsqueeze(0), -1e9, nk::zeros({L, L}));
  torch::Tensor tcausal = to_torch(causal);
  check_module("MultiheadAttention self causal", *nm, *tm, {nk::randn({L, N, 8})},
               [&](auto& v) { return nm->forward(v[0], v[0], v[0], {}, true, causal).output; },
               [&](auto& v) { return std::get<0>(tm->forward(v[0], v[0], v[0], torch::Tensor(), true, tcausal)); });
  nk::Tensor kpm = nk::from_vector(std::vector<bool>{false, false, true, false, true, false, false, false, false,
                                                     false, false, false, false, true, true}).view({N, S});
  torch::Tensor tkpm = to_torch(kpm);
  check_module("MultiheadAttention cross kpm", *nm, *tm, {nk::randn({L, N, 8}), nk::randn({S, N, 8}), nk::randn({S, N, 8})},
               [&](auto& v) { return nm->forward(v[0], v[1], v[2], kpm).output; },
               [&](auto& v) { return std::get<0>(tm(v[0], v[1], v[2], tkpm)); });
  nk::Tensor q = nk::randn({L, N, 8}), kv = nk::randn({S, N, 8});
  nk::Tensor w = nm->forward(q, kv, kv, kpm).weights;
  torch::Tensor tw = std::get<1>(tm(to_torch(q), to_torch(kv), to_torch(kv), tkpm));
  EXPECT_LE(rel_err(w, tw), 1e-5);
  // batch_first gives the same result on transposed inputs.
  auto bf = nn::make<nn::MultiheadAttention>(nn::MultiheadAttention::Options{.embed_dim = 8, .num_heads = 2, .batch_first = true});
  bf->load_state_dict(nm->state_dict());
  EXPECT_LE(rel_err(bf->forward(q.transpose(0, 1), kv.transpose(0, 1), kv.transpose(0, 1), kpm).output.transpose(0, 1),
                    std::get<0>(tm(to_torch(q), to_torch(kv), to_torch(kv), tkpm))),
            1e-5);
}
