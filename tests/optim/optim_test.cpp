// Optimizers beyond the update rules (which tests/parity compares with LibTorch): parameter
// groups, state dicts through files (resuming gives identical steps), validation that changes
// nothing on failure, argument errors, maximize, gradient value clipping, scheduler errors.
#include <gtest/gtest.h>

#include "test_util.h"

#include <cmath>
#include <cstdio>
#include <nnkit/nnkit.h>

using namespace nnkit;
namespace nn = nnkit::nn;

namespace {
using nnkit::test_util::error_of;

// A few steps of training a small model on fixed data.
void train_steps(nn::Module& model, optim::Optimizer& opt, int steps, uint64_t seed) {
  manual_seed(seed);
  for (int i = 0; i < steps; ++i) {
    Tensor x = randn({8, 4}), y = randn({8, 2});
    opt.zero_grad();
    (model(x) - y).pow(2).mean().backward();
    opt.step();
  }
}
}  // namespace

TEST(Optim, ParameterGroupsHaveTheirOwnOptions) {
  Tensor a = ones({2}, {.requires_grad = true}), b = ones({2}, {.requires_grad = true});
  optim::SGD opt({{{a}, std::nullopt}, {{b}, optim::SGDOptions{.lr = 0.5}}}, {.lr = 0.1});
  a.set_grad(ones({2}));
  b.set_grad(ones({2}));
  opt.step();
  EXPECT_FLOAT_EQ(a[0].item<float>(), 0.9f);
  EXPECT_FLOAT_EQ(b[0].item<float>(), 0.5f);
  EXPECT_EQ(opt.num_param_groups(), 2u);
  EXPECT_DOUBLE_EQ(opt.lr(1), 0.5);
  opt.set_lr(0.01);
  EXPECT_DOUBLE_EQ(opt.lr(0), 0.01);
  EXPECT_DOUBLE_EQ(opt.lr(1), 0.01);
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  EXPECT_NE(error_of([&] { optim::SGD twice({{{a}, std::nullopt}, {{a}, std::nullopt}}, {.lr = 0.1}); }).find("appears twice"),
            std::string::npos);
}

TEST(Optim, ResumingFromAStateDictGivesIdenticalSteps) {
  for (int kind = 0; kind < 4; ++kind) {
    auto make_model = [] {
      manual_seed(3);
      return nn::make<nn::Sequential>(nn::make<nn::Linear>(4, 8), nn::make<nn::Tanh>(), nn::make<nn::Linear>(8, 2));
    };
    auto make_opt = [kind](const TensorList& p) -> std::unique_ptr<optim::Optimizer> {
      switch (kind) {
        case 0: return std::make_unique<optim::SGD>(p, optim::SGDOptions{.lr = 0.05, .momentum = 0.9});
        case 1: return std::make_unique<optim::Adam>(p, optim::AdamOptions{.lr = 0.01, .amsgrad = true});
        case 2: return std::make_unique<optim::AdamW>(p, optim::AdamWOptions{.lr = 0.01});
        default: return std::make_unique<optim::RMSprop>(p, optim::RMSpropOptions{.lr = 0.01, .momentum = 0.5, .centered = true});
      }
    };
    // Uninterrupted: 6 steps.
    auto m1 = make_model();
    auto o1 = make_opt(m1->parameters());
    train_steps(*m1, *o1, 3, 10);
    train_steps(*m1, *o1, 3, 11);
    // Interrupted after 3: model and optimizer saved to files, loaded into fresh objects.
    auto m2 = make_model();
    auto o2 = make_opt(m2->parameters());
    train_steps(*m2, *o2, 3, 10);
    std::string mpath = ::testing::TempDir() + "nnkit_resume_model.safetensors";
    std::string opath = ::testing::TempDir() + "nnkit_resume_optim.safetensors";
    save(m2->state_dict(), mpath);
    save(o2->state_dict(), opath);
    auto m3 = make_model();
    auto o3 = make_opt(m3->parameters());
    m3->load_state_dict(load(mpath));
    o3->load_state_dict(load(opath));
    train_steps(*m3, *o3, 3, 11);
    for (auto& [k, t] : m1->state_dict()) EXPECT_TRUE(equal(t, m3->state_dict().at(k))) << o1->name() << " " << k;
    std::remove(mpath.c_str());
    std::remove(opath.c_str());
  }
}

TEST(Optim, AFailedStateLoadChangesNothing) {
  Tensor w = ones({3}, {.requires_grad = true});
  optim::Adam opt({w}, {.lr = 0.1});
  w.set_grad(ones({3}));
  opt.step();
  StateDict good = opt.state_dict();
  EXPECT_TRUE(good.contains("state.0.exp_avg"));
  EXPECT_TRUE(good.contains("param_groups.0.lr"));
  StateDict bad = good;
  bad.at("state.0.exp_avg") = zeros({4});
  bad.erase("param_groups.0.eps");
  bad.insert("state.7.exp_avg", zeros({3}));
  opt.options().lr = 0.5;
  std::string e = error_of([&] { opt.load_state_dict(bad); });
  EXPECT_NE(e.find("'state.0.exp_avg' has shape [4]"), std::string::npos) << e;
  EXPECT_NE(e.find("missing 'param_groups.0.eps'"), std::string::npos) << e;
  EXPECT_NE(e.find("'state.7.exp_avg' names no parameter"), std::string::npos) << e;
  EXPECT_NE(e.find("nothing was loaded"), std::string::npos) << e;
  EXPECT_DOUBLE_EQ(opt.lr(), 0.5);  // unchanged
  opt.load_state_dict(good);
  EXPECT_DOUBLE_EQ(opt.lr(), 0.1);
}

TEST(Optim, ArgumentErrorsAndMaximize) {
  Tensor w = ones({2}, {.requires_grad = true});
  EXPECT_NE(error_of([&] { optim::Adam a({w}, {.lr = -1}); }).find("invalid learning rate"), std::string::npos);
  EXPECT_NE(error_of([&] { optim::Adam a({w}, {.beta1 = 1.0}); }).find("invalid beta parameter at index 0"), std::string::npos);
  EXPECT_NE(error_of([&] { optim::SGD s({w}, {.lr = 0.1, .nesterov = true}); }).find("nesterov"), std::string::npos);
  EXPECT_NE(error_of([&] { optim::SGD s({(w * 2)}, {.lr = 0.1}); }).find("not a leaf"), std::string::npos);
  EXPECT_NE(error_of([&] { optim::SGD s(TensorList{}, {.lr = 0.1}); }).find("empty"), std::string::npos);
  // maximize == minimizing the negated gradient.
  Tensor a = ones({2}, {.requires_grad = true}), b = ones({2}, {.requires_grad = true});
  optim::Adam up({a}, {.lr = 0.1, .maximize = true}), down({b}, {.lr = 0.1});
  for (int i = 0; i < 3; ++i) {
    a.set_grad(full({2}, 0.5));
    b.set_grad(full({2}, -0.5));
    up.step();
    down.step();
  }
  EXPECT_TRUE(equal(a, b));
  EXPECT_GT(a[0].item<float>(), 1.f);
}

TEST(Optim, ClipGradValueAndSchedulerErrors) {
  Tensor w = zeros({4}, {.requires_grad = true});
  w.set_grad(from_vector(std::vector<float>{-3, -0.5, 0.5, 3}));
  optim::clip_grad_value_({w}, 1.0);
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{-1, -0.5, 0.5, 1}));
  EXPECT_NE(error_of([&] { optim::clip_grad_value_({w}, -1); }).find("non-negative"), std::string::npos);
  w.set_grad(full({4}, INFINITY));
  EXPECT_NE(error_of([&] { optim::clip_grad_norm_({w}, 1.0, 2.0, true); }).find("non-finite"), std::string::npos);
  optim::SGD opt({w}, {.lr = 0.1});
  EXPECT_NE(error_of([&] { optim::StepLR s(opt, 0); }).find("step_size"), std::string::npos);
  optim::OneCycleLR one(opt, {.max_lr = 1.0, .total_steps = 2, .cycle_momentum = false});
  one.step();
  one.step();
  EXPECT_NE(error_of([&] { one.step(); }).find("total_steps"), std::string::npos);
}
