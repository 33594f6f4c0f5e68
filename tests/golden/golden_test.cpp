// Golden numerics: nnkit's layers and losses against values PyTorch computed, read from the
// committed tests/golden/layers.safetensors (made by tests/golden/make_golden.py). Unlike the
// parity suite this needs neither LibTorch nor Python, so every build checks the numerics.
//
// Per case (see make_golden.py for the file's names): build the nnkit module with the options of
// the PyTorch module, load PyTorch's state dict into it (strict: the parameter and buffer names
// and shapes must be PyTorch's), then per step run forward on PyTorch's input and backward with
// PyTorch's upstream gradient, and compare the output, the input and parameter gradients and
// BatchNorm's running statistics. In float64 the relative error (max |nnkit - PyTorch| over
// max |PyTorch|) must be <= 1e-10; the same run in float32 (inputs, state and upstream gradient
// converted) must be within 1e-5 of the float64 reference.
//
// kCases must match CASES in make_golden.py: same names, same module options (the test
// CaseListMatchesTheFile fails when a case is in one list only).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nnkit/nnkit.h>

#ifndef NNKIT_GOLDEN_FILE
#error "define NNKIT_GOLDEN_FILE as the path of tests/golden/layers.safetensors"
#endif

namespace nk = nnkit;
namespace nn = nnkit::nn;
namespace F = nnkit::nn::functional;

namespace {

// One step's tensors by their short name: "input", "input2", "target", "attn_mask", ...
using Tensors = std::map<std::string, nk::Tensor>;
using Forward = std::function<nk::TensorList(nn::Module&, const Tensors&)>;

nk::TensorList single(nn::Module& m, const Tensors& x) { return {m(x.at("input"))}; }
nk::TensorList two_inputs(nn::Module& m, const Tensors& x) { return m(nk::TensorList{x.at("input"), x.at("input2")}); }
// Losses: (input, target); MSELoss and L1Loss targets take a gradient and are called "input2".
nk::TensorList loss(nn::Module& m, const Tensors& x) {
  auto it = x.find("input2");
  return m(nk::TensorList{x.at("input"), it != x.end() ? it->second : x.at("target")});
}
nk::TensorList mha_self(nn::Module& m, const Tensors& x) {
  const nk::Tensor& q = x.at("input");
  auto r = m.as<nn::MultiheadAttention>()->forward(q, q, q, {}, true, x.at("attn_mask"));
  return {r.output, r.weights};
}
nk::TensorList mha_cross(nn::Module& m, const Tensors& x) {
  auto r = m.as<nn::MultiheadAttention>()->forward(x.at("input"), x.at("input2"), x.at("input3"),
                                                   x.at("key_padding_mask"), true, x.at("attn_mask"));
  return {r.output, r.weights};
}

struct GoldenCase {
  std::string name;
  std::function<nn::Ptr<>()> make;
  Forward forward = single;
  std::vector<bool> train = {true};  // one entry per step: train (true) or eval mode
};

template <typename M, typename... A>
std::function<nn::Ptr<>()> mk(A... a) {
  return [=] { return nn::Ptr<>(nn::make<M>(a...)); };
}
template <typename M>
std::function<nn::Ptr<>()> mko(typename M::Options o) {
  return [=] { return nn::Ptr<>(nn::make<M>(o)); };
}
// Placeholder per-class weights: the buffer must exist to receive PyTorch's values.
nk::Tensor W(int64_t c) { return nk::ones({c}); }
F::CrossEntropyOptions ce(nk::Tensor weight = {}, int64_t ignore_index = -100, F::Reduction r = F::Reduction::Mean,
                          double smoothing = 0.0) {
  return {.weight = weight, .ignore_index = ignore_index, .reduction = r, .label_smoothing = smoothing};
}
constexpr auto Sum = F::Reduction::Sum;
constexpr auto None = F::Reduction::None;

// Keep in sync with CASES in tests/golden/make_golden.py.
const std::vector<GoldenCase>& cases() {
  static const std::vector<GoldenCase> kCases = {
      {"linear", mk<nn::Linear>(5, 4)},
      {"linear_nobias", mk<nn::Linear>(6, 3, false)},
      {"bilinear", mk<nn::Bilinear>(3, 4, 5), two_inputs},
      {"conv1d", mko<nn::Conv1d>({.in_channels = 4, .out_channels = 6, .kernel_size = 3, .stride = 2, .padding = 1,
                                  .dilation = 2, .groups = 2})},
      {"conv1d_same_replicate",
       mko<nn::Conv1d>({.in_channels = 2, .out_channels = 3, .kernel_size = 4, .padding = "same", .padding_mode = "replicate"})},
      {"conv2d", mk<nn::Conv2d>(3, 4, 3)},
      {"conv2d_stride_pad_dil_groups",
       mko<nn::Conv2d>({.in_channels = 4, .out_channels = 6, .kernel_size = {3, 2}, .stride = {2, 1}, .padding = {1, 2},
                        .dilation = {1, 2}, .groups = 2})},
      {"conv2d_nobias_stride",
       mko<nn::Conv2d>({.in_channels = 2, .out_channels = 3, .kernel_size = 2, .stride = 2, .bias = false})},
      {"conv2d_same",
       mko<nn::Conv2d>({.in_channels = 3, .out_channels = 4, .kernel_size = {3, 4}, .padding = "same", .dilation = {2, 1}})},
      {"conv2d_reflect", mko<nn::Conv2d>({.in_channels = 2, .out_channels = 3, .kernel_size = 3, .stride = 2, .padding = 1,
                                          .padding_mode = "reflect"})},
      {"conv2d_same_reflect", mko<nn::Conv2d>({.in_channels = 2, .out_channels = 3, .kernel_size = {3, 2},
                                               .padding = "same", .padding_mode = "reflect"})},
      {"conv_transpose2d", mko<nn::ConvTranspose2d>({.in_channels = 3, .out_channels = 4, .kernel_size = 3, .stride = 2,
                                                     .padding = 1, .output_padding = 1})},
      {"conv_transpose2d_groups_dil",
       mko<nn::ConvTranspose2d>({.in_channels = 4, .out_channels = 6, .kernel_size = 3, .stride = 2, .padding = 2,
                                 .output_padding = 1, .groups = 2, .dilation = 2})},
      {"batchnorm1d", mk<nn::BatchNorm1d>(5)},
      {"batchnorm1d_3d_cumulative", mko<nn::BatchNorm1d>({.num_features = 4, .momentum = std::nullopt}), single,
       {true, true, false}},
      {"batchnorm2d", mk<nn::BatchNorm2d>(4), single, {true, true, true, false}},
      {"groupnorm", mk<nn::GroupNorm>(3, 6)},
      {"groupnorm_noaffine_3d", mk<nn::GroupNorm>(2, 4, 1e-3, false)},
      {"layernorm", mk<nn::LayerNorm>(nk::Shape{5, 6})},
      {"layernorm_noaffine", mk<nn::LayerNorm>(nk::Shape{7}, 1e-3, false)},
      {"instancenorm2d", mk<nn::InstanceNorm2d>(3)},
      {"instancenorm2d_affine", mk<nn::InstanceNorm2d>(3, 1e-5, true)},
      {"relu", mk<nn::ReLU>()},
      {"leaky_relu", mk<nn::LeakyReLU>(0.2)},
      {"gelu", mk<nn::GELU>()},
      {"gelu_tanh", mk<nn::GELU>("tanh")},
      {"silu", mk<nn::SiLU>()},
      {"sigmoid", mk<nn::Sigmoid>()},
      {"tanh", mk<nn::Tanh>()},
      {"softmax", mk<nn::Softmax>(1)},
      {"log_softmax", mk<nn::LogSoftmax>(-1)},
      {"maxpool2d", mk<nn::MaxPool2d>(F::Pair(3), F::Pair(2), F::Pair(1))},
      {"maxpool2d_ceil", mk<nn::MaxPool2d>(F::Pair(2), std::nullopt, F::Pair(0), true)},
      {"avgpool2d_pad", mk<nn::AvgPool2d>(F::Pair(3), F::Pair(2), F::Pair(1))},
      {"avgpool2d_pad_ceil", mk<nn::AvgPool2d>(F::Pair(3), F::Pair(2), F::Pair(1), true)},
      {"avgpool2d_ceil", mk<nn::AvgPool2d>(F::Pair(2), std::nullopt, F::Pair(0), true)},
      {"adaptive_avgpool2d", mk<nn::AdaptiveAvgPool2d>(F::Pair(3, 4))},
      {"adaptive_avgpool2d_up", mk<nn::AdaptiveAvgPool2d>(F::Pair(5, 3))},
      {"flatten", mk<nn::Flatten>(1, 2)},
      {"unflatten", mk<nn::Unflatten>(1, nk::Shape{2, 3})},
      {"embedding_padding_idx", mko<nn::Embedding>({.num_embeddings = 10, .embedding_dim = 4, .padding_idx = 0})},
      {"mha_self_causal", mko<nn::MultiheadAttention>({.embed_dim = 8, .num_heads = 2, .batch_first = true}), mha_self},
      {"mha_cross_kpm", mko<nn::MultiheadAttention>({.embed_dim = 6, .num_heads = 3, .batch_first = true}), mha_cross},
      {"mse", mk<nn::MSELoss>(), loss},
      {"mse_sum", mk<nn::MSELoss>(Sum), loss},
      {"l1", mk<nn::L1Loss>(), loss},
      {"l1_none", mk<nn::L1Loss>(None), loss},
      {"cross_entropy", mk<nn::CrossEntropyLoss>(), loss},
      {"cross_entropy_weight_ignore", [] { return nn::Ptr<>(nn::make<nn::CrossEntropyLoss>(ce(W(5), 2))); }, loss},
      {"cross_entropy_smoothing", [] { return nn::Ptr<>(nn::make<nn::CrossEntropyLoss>(ce({}, -100, F::Reduction::Mean, 0.15))); },
       loss},
      {"cross_entropy_weight_smoothing_ignore",
       [] { return nn::Ptr<>(nn::make<nn::CrossEntropyLoss>(ce(W(5), -100, F::Reduction::Mean, 0.2))); }, loss},
      {"cross_entropy_probs", mk<nn::CrossEntropyLoss>(), loss},
      {"cross_entropy_probs_weight_smoothing",
       [] { return nn::Ptr<>(nn::make<nn::CrossEntropyLoss>(ce(W(4), -100, F::Reduction::Mean, 0.1))); }, loss},
      {"cross_entropy_kdim_none", [] { return nn::Ptr<>(nn::make<nn::CrossEntropyLoss>(ce({}, -100, None))); }, loss},
      {"cross_entropy_sum", [] { return nn::Ptr<>(nn::make<nn::CrossEntropyLoss>(ce({}, -100, Sum))); }, loss},
      {"nll_weight", [] { return nn::Ptr<>(nn::make<nn::NLLLoss>(ce(W(5)))); }, loss},
      {"bce_weight", [] { return nn::Ptr<>(nn::make<nn::BCELoss>(W(4))); }, loss},
      {"bce_sum", [] { return nn::Ptr<>(nn::make<nn::BCELoss>(nk::Tensor(), Sum)); }, loss},
      {"bce_logits_pos_weight", [] { return nn::Ptr<>(nn::make<nn::BCEWithLogitsLoss>(W(4), W(4))); }, loss},
      {"bce_logits_pos_weight_sum",
       [] { return nn::Ptr<>(nn::make<nn::BCEWithLogitsLoss>(nk::Tensor(), W(3), Sum)); }, loss},
  };
  return kCases;
}

const nk::StateDict& golden() {
  static const nk::StateDict g = nk::load(NNKIT_GOLDEN_FILE);
  return g;
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

// The golden tensors named "<prefix><rest>", by <rest>.
std::map<std::string, nk::Tensor> with_prefix(const std::string& prefix) {
  std::map<std::string, nk::Tensor> out;
  for (const auto& [k, v] : golden())
    if (starts_with(k, prefix)) out[k.substr(prefix.size())] = v;
  return out;
}

nk::Tensor as(const nk::Tensor& t, nk::Dtype d) { return t.is_floating_point() ? t.to(d) : t; }

// Worst error per case and dtype, printed after the run.
std::map<std::string, std::map<nk::Dtype, double>>& worst() {
  static std::map<std::string, std::map<nk::Dtype, double>> w;
  return w;
}

// max |got - want| / max |want| (the absolute error where want is all zeros), in float64.
void compare(const std::string& case_name, const std::string& what, const nk::Tensor& got, const nk::Tensor& want,
             nk::Dtype d) {
  ASSERT_TRUE(got.defined()) << case_name << ": " << what << " is undefined (PyTorch has one)";
  ASSERT_EQ(got.sizes(), want.sizes()) << case_name << ": shape of " << what;
  if (!want.is_floating_point()) {
    EXPECT_TRUE(got.to(want.dtype()).equal(want)) << case_name << ": " << what << ": " << got << " vs PyTorch " << want;
    return;
  }
  if (want.numel() == 0) return;
  nk::Tensor g64 = got.detach().to(nk::kFloat64), w64 = want.to(nk::kFloat64);
  double scale = w64.abs().max().item<double>();
  double err = (g64 - w64).abs().max().item<double>() / (scale > 0 ? scale : 1.0);
  if (std::isnan(err)) err = INFINITY;
  double& wr = worst()[case_name][d];
  wr = std::max(wr, err);
  const double tol = d == nk::kFloat64 ? 1e-10 : 1e-5;
  EXPECT_LE(err, tol) << case_name << " (" << d << "): " << what << " differs from PyTorch (max |PyTorch| " << scale << ")";
}

struct GoldenEnv : ::testing::Environment {
  void TearDown() override {
    if (worst().empty()) return;
    std::printf("\nmax relative error vs PyTorch's golden values, per case:\n| case | float64 | float32 |\n|---|---|---|\n");
    for (auto& [k, v] : worst()) {
      auto f = [&](nk::Dtype d) { return v.count(d) ? v.at(d) : -1.0; };
      std::printf("| %s | %.2e | %.2e |\n", k.c_str(), f(nk::kFloat64), f(nk::kFloat32));
    }
  }
};
[[maybe_unused]] auto* env = ::testing::AddGlobalTestEnvironment(new GoldenEnv);

void run_case(const GoldenCase& c, nk::Dtype d) {
  nn::Ptr<> m = c.make();
  m->to(d);
  nk::StateDict state;
  for (auto& [k, v] : with_prefix(c.name + ".state.")) state.insert(k, as(v, d));
  m->load_state_dict(state);  // strict: nnkit's keys, shapes and dtypes are PyTorch's
  for (size_t step = 0; step < c.train.size(); ++step) {
    const std::string p = c.train.size() == 1 ? c.name + "." : c.name + ".step" + std::to_string(step) + ".";
    SCOPED_TRACE(p);
    std::map<std::string, nk::Tensor> file = with_prefix(p);
    ASSERT_TRUE(file.count("output")) << "no golden output for " << p;
    m->train(c.train[step]);
    m->zero_grad();
    Tensors x;
    for (auto& [k, v] : file) {
      if (k.find('.') != std::string::npos || starts_with(k, "output") || starts_with(k, "grad_")) continue;
      nk::Tensor t = as(v, d).clone();
      if (starts_with(k, "input") && t.is_floating_point()) t.requires_grad_(true);
      x[k] = t;
    }
    nk::TensorList out = c.forward(*m, x);
    compare(c.name, p + "output", out.at(0), file.at("output"), d);
    if (file.count("output_weights")) compare(c.name, p + "output_weights", out.at(1), file.at("output_weights"), d);
    out.at(0).backward(as(file.at("grad_output"), d));
    for (auto& [k, t] : x) {
      if (!t.requires_grad()) continue;
      ASSERT_TRUE(file.count("grad_" + k)) << p << k << " takes a gradient in nnkit, not in PyTorch";
      compare(c.name, p + "grad_" + k, t.grad(), file.at("grad_" + k), d);
    }
    size_t n_param_grads = 0;
    for (auto& [k, param] : m->named_parameters()) {
      ASSERT_TRUE(file.count("grad." + k)) << p << " nnkit parameter " << k << " has no gradient in PyTorch";
      compare(c.name, p + "grad." + k, param.grad(), file.at("grad." + k), d);
      ++n_param_grads;
    }
    size_t n_file_param_grads = 0;
    auto buffers = m->named_buffers();
    for (auto& [k, v] : file) {
      if (starts_with(k, "grad.")) ++n_file_param_grads;
      if (!starts_with(k, "buffer.")) continue;
      const nk::Tensor* b = buffers.find(k.substr(7));
      ASSERT_NE(b, nullptr) << p << " PyTorch buffer " << k.substr(7) << " missing in nnkit";
      compare(c.name, p + k, *b, v, d);
    }
    EXPECT_EQ(n_param_grads, n_file_param_grads) << p << ": parameter gradients in nnkit vs PyTorch";
  }
}

class Golden : public ::testing::TestWithParam<std::tuple<std::string, nk::Dtype>> {};

std::vector<std::string> case_names() {
  std::vector<std::string> n;
  for (auto& c : cases()) n.push_back(c.name);
  return n;
}

}  // namespace

TEST(GoldenFile, CaseListMatchesTheFile) {
  std::set<std::string> in_file, in_test;
  for (const auto& [k, v] : golden()) in_file.insert(k.substr(0, k.find('.')));
  for (auto& c : cases()) EXPECT_TRUE(in_test.insert(c.name).second) << "duplicate case " << c.name;
  for (auto& n : in_file) EXPECT_TRUE(in_test.count(n)) << "case " << n << " is in the golden file but not in kCases";
  for (auto& n : in_test) EXPECT_TRUE(in_file.count(n)) << "case " << n << " is in kCases but not in the golden file";
}

TEST_P(Golden, MatchesPyTorch) {
  const auto& [name, dtype] = GetParam();
  auto it = std::find_if(cases().begin(), cases().end(), [&](auto& c) { return c.name == name; });
  ASSERT_NE(it, cases().end());
  run_case(*it, dtype);
}

INSTANTIATE_TEST_SUITE_P(Layers, Golden,
                         ::testing::Combine(::testing::ValuesIn(case_names()),
                                            ::testing::Values(nk::kFloat64, nk::kFloat32)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + (std::get<1>(info.param) == nk::kFloat64 ? "_f64" : "_f32");
                         });
