// The CUDA backend against the CPU: optimizer steps, training a small network, moving modules.
// Helpers, fixtures and tolerances: cuda_util.h.
#include "cuda/cuda_util.h"

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
