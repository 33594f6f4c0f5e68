// The CUDA backend against the CPU: convolutions (cuDNN).
// Helpers, fixtures and tolerances: cuda_util.h.
#include "cuda/cuda_util.h"

TEST_F(Cuda, Convolutions) {
  using C2 = nn::Conv2d::Options;
  const std::vector<std::pair<std::string, C2>> conv2d = {
      {"plain", C2{.in_channels = 3, .out_channels = 8, .kernel_size = 3}},
      {"stride 2 padding 1", C2{.in_channels = 3, .out_channels = 8, .kernel_size = 3, .stride = 2, .padding = 1}},
      {"dilation 2 groups 2",
       C2{.in_channels = 4, .out_channels = 6, .kernel_size = 3, .padding = 2, .dilation = 2, .groups = 2}},
      {"depthwise same", C2{.in_channels = 4, .out_channels = 4, .kernel_size = 3, .padding = "same", .groups = 4}},
      {"rectangular, no bias",
       C2{.in_channels = 3, .out_channels = 5, .kernel_size = {3, 2}, .stride = {2, 1}, .padding = {1, 0}, .bias = false}},
      {"1x1", C2{.in_channels = 4, .out_channels = 2, .kernel_size = 1}},
      {"same, dilated", C2{.in_channels = 2, .out_channels = 3, .kernel_size = 3, .padding = "same", .dilation = {2, 1}}},
      {"reflect", C2{.in_channels = 3, .out_channels = 4, .kernel_size = 3, .padding = 1, .padding_mode = "reflect"}},
      {"replicate", C2{.in_channels = 3, .out_channels = 4, .kernel_size = 3, .padding = 2, .padding_mode = "replicate"}},
      {"circular", C2{.in_channels = 3, .out_channels = 4, .kernel_size = 3, .stride = 2, .padding = 1,
                      .padding_mode = "circular"}},
  };
  using C1 = nn::Conv1d::Options;
  const std::vector<std::pair<std::string, C1>> conv1d = {
      {"plain", C1{.in_channels = 3, .out_channels = 6, .kernel_size = 3}},
      {"stride 2 padding 1", C1{.in_channels = 3, .out_channels = 6, .kernel_size = 3, .stride = 2, .padding = 1}},
      {"same dilated groups",
       C1{.in_channels = 4, .out_channels = 4, .kernel_size = 5, .padding = "same", .dilation = 2, .groups = 2}},
      {"circular", C1{.in_channels = 2, .out_channels = 3, .kernel_size = 3, .padding = 1, .padding_mode = "circular"}},
  };
  using CT = nn::ConvTranspose2d::Options;
  const std::vector<std::pair<std::string, CT>> convt = {
      {"plain", CT{.in_channels = 4, .out_channels = 6, .kernel_size = 3}},
      {"stride 2 output_padding 1",
       CT{.in_channels = 4, .out_channels = 6, .kernel_size = 3, .stride = 2, .padding = 1, .output_padding = 1}},
      {"groups dilation", CT{.in_channels = 4, .out_channels = 4, .kernel_size = 3, .groups = 2, .dilation = 2}},
      {"rectangular, no bias",
       CT{.in_channels = 3, .out_channels = 2, .kernel_size = {2, 3}, .stride = {2, 1}, .bias = false}},
  };
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    for (auto& [name, o] : conv2d) {
      auto m = nn::make<nn::Conv2d>(o);
      m->to(dt);
      check_train_eval("Conv2d " + name, m, {leaf({2, o.in_channels, 9, 8}, dt)});
    }
    auto strided = permuted({0, 3, 1, 2}, nn::make<nn::Conv2d>(conv2d[1].second));
    strided->to(dt);
    check_train_eval("Conv2d of a permuted input", strided, {leaf({2, 9, 8, 3}, dt)});
    for (auto& [name, o] : conv1d) {
      auto m = nn::make<nn::Conv1d>(o);
      m->to(dt);
      check_train_eval("Conv1d " + name, m, {leaf({2, o.in_channels, 11}, dt)});
    }
    for (auto& [name, o] : convt) {
      auto m = nn::make<nn::ConvTranspose2d>(o);
      m->to(dt);
      check_train_eval("ConvTranspose2d " + name, m, {leaf({2, o.in_channels, 5, 6}, dt)});
    }
    // Functional forms with a strided (non-contiguous) input.
    check_op("conv2d of a permuted input", OP(F::conv2d(x[0].permute({0, 3, 1, 2}), x[1], x[2], {.stride = 2, .padding = 1})),
             {leaf({2, 7, 6, 3}, dt), leaf({4, 3, 3, 3}, dt), leaf({4}, dt)});
    check_op("conv1d", OP(F::conv1d(x[0], x[1], {}, 2, 1, 1, 1)), {leaf({2, 3, 10}, dt), leaf({5, 3, 4}, dt)});
    check_op("conv_transpose2d", OP(F::conv_transpose2d(x[0], x[1], x[2], {.stride = 2, .padding = 1})),
             {leaf({2, 3, 4, 4}, dt), leaf({3, 5, 3, 3}, dt), leaf({5}, dt)});
  }
  // A bigger float32 convolution, where the device's algorithms differ most from the CPU's.
  auto big = nn::make<nn::Conv2d>(C2{.in_channels = 32, .out_channels = 64, .kernel_size = 3, .padding = 1});
  check_module(big, {leaf({8, 32, 28, 28})});
}
