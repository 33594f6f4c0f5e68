// Layers without a LibTorch twin in the parity suite, or with behaviour beyond values: loss
// modules (call forms, buffers in the state dict), Dropout2d statistics, Embedding errors,
// Unflatten/Softmax modules, bad options.
#include <gtest/gtest.h>

#include "test_util.h"

#include <nnkit/nnkit.h>

using namespace nnkit;
namespace nn = nnkit::nn;
namespace F = nnkit::nn::functional;

using nnkit::test_util::error_of;

TEST(MoreLayers, LossModulesMatchTheirFunctionalForms) {
  manual_seed(21);
  Tensor x = randn({4, 5}), t = randint(0, 5, {4}), p = rand({4, 5}), y = rand({4, 5});
  nn::CrossEntropyLoss ce({.weight = rand({5}) + 0.5, .label_smoothing = 0.1});
  EXPECT_TRUE(allclose(ce(x, t), F::cross_entropy(x, t, {.weight = ce.weight, .label_smoothing = 0.1})));
  EXPECT_EQ(ce.state_dict().keys(), (std::vector<std::string>{"weight"}));  // a buffer, as in PyTorch
  nn::NLLLoss nll;
  EXPECT_TRUE(allclose(nll(x.log_softmax(1), t), F::nll_loss(x.log_softmax(1), t)));
  nn::MSELoss mse(F::Reduction::Sum);
  EXPECT_TRUE(allclose(mse(x, y), (x - y).pow(2.0).sum()));
  nn::L1Loss l1;
  EXPECT_TRUE(allclose(l1(x, y), (x - y).abs().mean()));
  nn::BCELoss bce;
  EXPECT_TRUE(allclose(bce(p * 0.9 + 0.05, y), F::binary_cross_entropy(p * 0.9 + 0.05, y)));
  nn::BCEWithLogitsLoss bcel(Tensor(), full({5}, 2.0));
  EXPECT_TRUE(allclose(bcel(x, y), F::binary_cross_entropy_with_logits(x, y, {}, full({5}, 2.0))));
  // Numerically stable for large logits, where log(sigmoid) would overflow.
  Tensor big = from_vector(std::vector<float>{100.f, -100.f});
  Tensor l = F::binary_cross_entropy_with_logits(big, from_vector(std::vector<float>{0.f, 1.f}), {}, {}, F::Reduction::None);
  EXPECT_NEAR(l[0].item<float>(), 100.f, 1e-3);
  EXPECT_NEAR(l[1].item<float>(), 100.f, 1e-3);
  EXPECT_NE(error_of([&] { bce(x, y); }).find("probabilities in [0, 1]"), std::string::npos);
  EXPECT_NE(error_of([&] { mse(x, y, y); }).find("expects (input, target)"), std::string::npos);
}

TEST(MoreLayers, Dropout2dDropsWholeChannels) {
  manual_seed(22);
  auto d = nn::make<nn::Dropout2d>(0.5);
  Tensor x = ones({8, 64, 3, 3});
  Tensor y = d(x);
  // Each channel is all zeros or all 2 (= 1 / (1 - p)).
  Tensor per_channel = y.amax({2, 3}), min_channel = y.amin({2, 3});
  EXPECT_TRUE(equal(per_channel, min_channel));
  double kept = (per_channel > 0.0).to(kFloat32).mean().item<double>();
  EXPECT_NEAR(kept, 0.5, 0.1);
  EXPECT_NEAR(y.mean().item<double>(), 1.0, 0.15);
  d->eval();
  EXPECT_TRUE(equal(d(x), x));
}

TEST(MoreLayers, EmbeddingShapesErrorsAndPadding) {
  manual_seed(23);
  auto e = nn::make<nn::Embedding>(nn::Embedding::Options{.num_embeddings = 5, .embedding_dim = 3, .padding_idx = -1});
  EXPECT_EQ(e->repr(), "Embedding(5, 3, padding_idx=4)");
  EXPECT_EQ(e->weight[4].abs().sum().item<float>(), 0.f);  // the padding row starts at zero
  Tensor out = e(from_vector(std::vector<int64_t>{0, 4, 2, 2}).view({2, 2}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 2, 3}));
  out.sum().backward();
  EXPECT_EQ(e->weight.grad()[4].abs().sum().item<float>(), 0.f);
  EXPECT_EQ(e->weight.grad()[2][0].item<float>(), 2.f);
  EXPECT_NE(error_of([&] { e(from_vector(std::vector<int64_t>{5})); }).find("index out of range"), std::string::npos);
  EXPECT_NE(error_of([&] { e(ones({2})); }).find("expected int64 indices"), std::string::npos);
}

TEST(MoreLayers, ShapeAndActivationModules) {
  Tensor x = randn({2, 6});
  EXPECT_EQ(nn::make<nn::Unflatten>(1, Shape{2, 3})(x).sizes(), (std::vector<int64_t>{2, 2, 3}));
  EXPECT_TRUE(allclose(nn::make<nn::Softmax>(1)(x).sum(1), ones({2})));
  EXPECT_TRUE(allclose(nn::make<nn::LogSoftmax>(1)(x).exp(), x.softmax(1)));
  EXPECT_TRUE(allclose(nn::make<nn::SiLU>()(x), x * x.sigmoid()));
  EXPECT_TRUE(allclose(nn::make<nn::LeakyReLU>(0.1)(x), where(x > 0.0, x, x * 0.1)));
  EXPECT_NE(error_of([] { nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 1, .out_channels = 1, .kernel_size = 3, .stride = 2, .padding = "same"}); })
                .find("not supported for strided"),
            std::string::npos);
  EXPECT_NE(error_of([] { nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 1, .out_channels = 1, .padding = "full"}); })
                .find("invalid padding string 'full'"),
            std::string::npos);
  EXPECT_NE(error_of([] { nn::make<nn::Conv1d>(nn::Conv1d::Options{.in_channels = 1, .out_channels = 1, .padding_mode = "mirror"}); })
                .find("padding_mode"),
            std::string::npos);
  EXPECT_NE(error_of([] { pad(ones({2, 3}), {3, 0}, "reflect"); }).find("reflect padding"), std::string::npos);
  // "valid" and explicit zero padding agree; "same" keeps the size.
  auto same = nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 2, .out_channels = 2, .kernel_size = 4, .padding = "same"});
  EXPECT_EQ(same(randn({1, 2, 7, 9})).sizes(), (std::vector<int64_t>{1, 2, 7, 9}));
}

// clone() copies tensors passed to a constructor (loss weights): converting or moving the copy
// leaves the original alone.
TEST(MoreLayers, CloneOfALossOwnsItsWeights) {
  auto ce = nn::make<nn::CrossEntropyLoss>(nn::functional::CrossEntropyOptions{.weight = rand({4})});
  auto bce = nn::make<nn::BCEWithLogitsLoss>(rand({4}), rand({4}));
  for (nn::Ptr<> orig : {nn::Ptr<>(ce), nn::Ptr<>(bce)}) {
    auto before = orig->named_buffers();
    std::vector<Tensor> values;
    for (auto& [n, t] : before) values.push_back(t.clone());
    auto copy = orig->clone();
    copy->to(kFloat64);
    size_t i = 0;
    for (auto& [n, t] : orig->named_buffers()) {
      EXPECT_EQ(t.dtype(), kFloat32) << n;
      EXPECT_TRUE(t.equal(values[i++])) << n;
    }
    for (auto& [n, t] : copy->named_buffers()) EXPECT_EQ(t.dtype(), kFloat64) << n;
  }
  Tensor x = randn({3, 4}), y = from_vector(std::vector<int64_t>{0, 3, 1});
  auto ce2 = ce->clone();
  EXPECT_TRUE(allclose((*ce2)(TensorList{x, y})[0], (*ce)(TensorList{x, y})[0]));
}

// 3x3 stride-1 convolutions with enough channels take the Winograd F(4x4,3x3) path (forward,
// input gradient, weight gradient). Checked against a reference built from other ops (shifted
// slices times the kernel taps, in float64): sizes that are and are not multiples of the 4x4
// tile, paddings 0-2, tile blocks that span images, few and many channels (the float32 error
// grows with the channels summed).
TEST(MoreLayers, WinogradConvolutionMatchesTapSums) {
  manual_seed(11);
  struct Case {
    int64_t N, C, K, H, W;
  };
  const std::vector<Case> cases{{2, 9, 12, 9, 10}, {2, 9, 12, 8, 7}, {3, 9, 12, 12, 12}, {2, 9, 12, 6, 5},
                                {3, 64, 40, 23, 17}, {1, 130, 72, 14, 14}};
  for (int64_t pad : {0, 1, 2})
    for (const Case& cs : cases)
      for (Dtype dt : {kFloat32, kFloat64}) {
        const int64_t N = cs.N, C = cs.C, K = cs.K, H = cs.H, W = cs.W;
        Tensor x = randn({N, C, H, W}, {.dtype = dt, .requires_grad = true});
        Tensor w = randn({K, C, 3, 3}, {.dtype = dt, .requires_grad = true});
        Tensor b = randn({K}, {.dtype = dt, .requires_grad = true});
        F::Conv2dFuncOptions o;
        o.padding = {pad, pad};
        Tensor y = F::conv2d(x, w, b, o);
        const int64_t Ho = H + 2 * pad - 2, Wo = W + 2 * pad - 2;
        ASSERT_EQ(y.sizes(), Shape({N, K, Ho, Wo}));
        // Reference in float64 from pad/narrow/matmul.
        Tensor xr = x.detach().to(kFloat64).requires_grad_(true), wr = w.detach().to(kFloat64).requires_grad_(true);
        Tensor xp = pad > 0 ? nnkit::pad(xr, {pad, pad, pad, pad}) : xr;
        Tensor ref = zeros({N, K, Ho * Wo}, {.dtype = kFloat64});
        for (int64_t i = 0; i < 3; ++i)
          for (int64_t j = 0; j < 3; ++j) {
            Tensor slice = xp.narrow(2, i, Ho).narrow(3, j, Wo).reshape({N, C, Ho * Wo});
            Tensor tap = wr.select(3, j).select(2, i);  // [K, C]
            ref = ref + matmul(tap, slice);
          }
        ref = ref.reshape({N, K, Ho, Wo}) + b.detach().to(kFloat64).view({1, K, 1, 1});
        const double tol = dt == kFloat32 ? 1e-5 : 1e-12;
        auto rel = [](const Tensor& a, const Tensor& r) {
          return (a.to(kFloat64) - r).abs().max().item<double>() / std::max(1e-30, r.abs().max().item<double>());
        };
        EXPECT_LT(rel(y, ref), tol) << "pad " << pad << " " << H << "x" << W << " C " << C << " " << dt;
        Tensor gy = randn(y.sizes(), {.dtype = dt});
        y.backward(gy);
        ref.backward(gy.to(kFloat64));
        EXPECT_LT(rel(x.grad(), xr.grad()), tol) << "input grad, pad " << pad << " " << H << "x" << W << " C " << C << " " << dt;
        EXPECT_LT(rel(w.grad(), wr.grad()), tol) << "weight grad, pad " << pad << " " << H << "x" << W << " C " << C << " " << dt;
        if (dt == kFloat32 && C == 64 && pad == 1)
          std::printf("winograd float32 rel. errors (C=64): out %.2e, input grad %.2e, weight grad %.2e\n",
                      rel(y, ref), rel(x.grad(), xr.grad()), rel(w.grad(), wr.grad()));
      }
}
