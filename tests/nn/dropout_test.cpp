// Dropout modules (src/nn/dropout.cpp).
#include <gtest/gtest.h>

#include "test_util.h"

#include <nnkit/nnkit.h>

using namespace nnkit;
namespace nn = nnkit::nn;
namespace F = nnkit::nn::functional;

using nnkit::test_util::error_of;

TEST(DropoutModules, Dropout2dDropsWholeChannels) {
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
