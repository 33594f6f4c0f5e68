// nn::init: every initializer's distribution (moments and bounds on large tensors), PyTorch's
// fans and gains, the structured ones (eye_, dirac_, orthogonal_, sparse_), no-grad, and the
// errors for undefined or too-small tensors.
#include <gtest/gtest.h>

#include "test_util.h"

#include <cmath>
#include <nnkit/nnkit.h>

using namespace nnkit;
namespace init = nnkit::nn::init;

namespace {
using nnkit::test_util::error_of;
double mean_of(const Tensor& t) { return t.to(kFloat64).mean().item<double>(); }
double std_of(const Tensor& t) { return t.to(kFloat64).std().item<double>(); }
}  // namespace

TEST(Init, GainsAndFansMatchPyTorch) {
  // torch.nn.init.calculate_gain
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::Nonlinearity::Linear), 1.0);
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::Nonlinearity::Conv2d), 1.0);
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::Nonlinearity::Sigmoid), 1.0);
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::Nonlinearity::Tanh), 5.0 / 3);
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::Nonlinearity::ReLU), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::Nonlinearity::LeakyReLU), std::sqrt(2.0 / (1 + 0.01 * 0.01)));
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::Nonlinearity::LeakyReLU, 0.2), std::sqrt(2.0 / 1.04));
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::Nonlinearity::SELU), 3.0 / 4);
  // Fans: [out, in, kh, kw] -> fan_in = in * kh * kw, fan_out = out * kh * kw.
  auto f = init::calculate_fan_in_and_fan_out(empty({8, 4, 3, 5}));
  EXPECT_EQ(f.fan_in, 4 * 15);
  EXPECT_EQ(f.fan_out, 8 * 15);
  EXPECT_NE(error_of([] { init::calculate_fan_in_and_fan_out(empty({5})); }).find("fewer than 2 dimensions"),
            std::string::npos);
  EXPECT_NE(error_of([] { init::xavier_uniform_(Tensor()); }).find("undefined"), std::string::npos);
}

TEST(Init, DistributionsHaveTheRightMomentsAndBounds) {
  manual_seed(41);
  Tensor t = empty({256, 512});
  init::uniform_(t, -0.5, 1.5);
  EXPECT_GE(t.min().item<float>(), -0.5f);
  EXPECT_LT(t.max().item<float>(), 1.5f);
  EXPECT_NEAR(mean_of(t), 0.5, 0.01);
  EXPECT_NEAR(std_of(t), 2.0 / std::sqrt(12.0), 0.01);
  init::normal_(t, 1.0, 2.0);
  EXPECT_NEAR(mean_of(t), 1.0, 0.02);
  EXPECT_NEAR(std_of(t), 2.0, 0.02);
  init::trunc_normal_(t, 0.0, 1.0, -1.0, 2.0);
  EXPECT_GE(t.min().item<float>(), -1.f);
  EXPECT_LE(t.max().item<float>(), 2.f);
  // Mean of N(0,1) truncated to [-1, 2]: (phi(-1) - phi(2)) / (Phi(2) - Phi(-1)).
  auto phi = [](double x) { return std::exp(-x * x / 2) / std::sqrt(2 * M_PI); };
  auto Phi = [](double x) { return 0.5 * (1 + std::erf(x / std::sqrt(2.0))); };
  EXPECT_NEAR(mean_of(t), (phi(-1) - phi(2)) / (Phi(2) - Phi(-1)), 0.01);
  init::constant_(t, 0.25);
  EXPECT_EQ(t.min().item<float>(), 0.25f);
  const double fan_in = 512, fan_out = 256;
  init::xavier_uniform_(t, 2.0);
  const double xb = 2.0 * std::sqrt(6.0 / (fan_in + fan_out));
  EXPECT_LE(t.abs().max().item<double>(), xb);
  EXPECT_NEAR(std_of(t), xb / std::sqrt(3.0), 0.02 * xb);
  init::xavier_normal_(t);
  EXPECT_NEAR(std_of(t), std::sqrt(2.0 / (fan_in + fan_out)), 0.01 * std::sqrt(2.0 / (fan_in + fan_out)) * 3);
  init::kaiming_uniform_(t, {.nonlinearity = init::Nonlinearity::ReLU});
  const double kb = std::sqrt(2.0) * std::sqrt(3.0 / fan_in);
  EXPECT_LE(t.abs().max().item<double>(), kb);
  EXPECT_NEAR(std_of(t), kb / std::sqrt(3.0), 0.02 * kb);
  init::kaiming_normal_(t, {.mode = init::FanMode::FanOut, .nonlinearity = init::Nonlinearity::ReLU});
  EXPECT_NEAR(std_of(t), std::sqrt(2.0 / fan_out), 0.03 * std::sqrt(2.0 / fan_out));
  // Initializers run under no-grad on parameters that require grad, and record no graph.
  Tensor p = empty({4, 4}, {.requires_grad = true});
  init::kaiming_uniform_(p);
  EXPECT_TRUE(p.is_leaf());
  EXPECT_FALSE(p.grad_fn());
}

TEST(Init, StructuredInitializers) {
  manual_seed(42);
  Tensor e = init::eye_(empty({3, 5}));
  EXPECT_TRUE(equal(e, eye(3, 5)));
  Tensor d = init::dirac_(empty({4, 2, 3, 3}), 2);  // two groups of 2 output channels
  EXPECT_EQ(d.sum().item<float>(), 4.f);
  EXPECT_EQ(d[0][0][1][1].item<float>(), 1.f);
  EXPECT_EQ(d[1][1][1][1].item<float>(), 1.f);
  EXPECT_EQ(d[2][0][1][1].item<float>(), 1.f);
  Tensor q = init::orthogonal_(empty({6, 10}), 1.0);
  EXPECT_TRUE(allclose(q.mm(q.t()), eye(6), 1e-4, 1e-5));  // orthonormal rows
  Tensor q2 = init::orthogonal_(empty({10, 6}), 2.0);
  EXPECT_TRUE(allclose(q2.t().mm(q2), eye(6) * 4.0, 1e-4, 1e-4));  // orthogonal columns, scaled
  Tensor s = init::sparse_(empty({20, 7}), 0.3, 0.01);
  for (int64_t c = 0; c < 7; ++c)
    EXPECT_EQ((s.select(1, c) == 0.0).to(kInt64).sum().item<int64_t>(), 6) << c;  // ceil(0.3 * 20)
  EXPECT_NE(error_of([] { init::eye_(empty({2, 2, 2})); }).find("only tensors with 2 dimensions"), std::string::npos);
  EXPECT_NE(error_of([] { init::dirac_(empty({2, 2})); }).find("3, 4, or 5 dimensions"), std::string::npos);
}
