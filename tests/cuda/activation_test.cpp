// The CUDA backend against the CPU: activations, dropout, pooling and shape layers.
// Helpers, fixtures and tolerances: cuda_util.h.
#include "cuda/cuda_util.h"

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
