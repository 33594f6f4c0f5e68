// Activation and shape modules (src/nn/activation.cpp, flatten.cpp), bad options.
#include <gtest/gtest.h>

#include "test_util.h"

#include <nnkit/nnkit.h>

using namespace nnkit;
namespace nn = nnkit::nn;
namespace F = nnkit::nn::functional;

using nnkit::test_util::error_of;

TEST(ActivationModules, ShapeAndActivationModules) {
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
