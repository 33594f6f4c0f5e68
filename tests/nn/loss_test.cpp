// Loss modules (src/nn/loss.cpp): call forms, weights as buffers in the state dict, clone.
// Values against LibTorch: tests/parity/loss_test.cpp.
#include <gtest/gtest.h>

#include "test_util.h"

#include <nnkit/nnkit.h>

using namespace nnkit;
namespace nn = nnkit::nn;
namespace F = nnkit::nn::functional;

using nnkit::test_util::error_of;

TEST(LossModules, LossModulesMatchTheirFunctionalForms) {
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

// clone() copies tensors passed to a constructor (loss weights): converting or moving the copy
// leaves the original alone.
TEST(LossModules, CloneOfALossOwnsItsWeights) {
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
