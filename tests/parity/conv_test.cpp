// Parity with LibTorch: convolutions, functional and modules (src/ops/conv.cpp, src/nn/conv.cpp)
// Helpers and tolerances: parity_util.h.
#include "parity/parity_util.h"

using namespace parity;

namespace {
class ParityConv : public DtypeTest {};
}  // namespace

TEST_P(ParityConv, Conv2dFunctional) {
  auto d = GetParam();
  struct ConvCase {
    nk::Shape x, w;
    F::Conv2dFuncOptions o;
  };
  std::vector<ConvCase> cases = {
      {{2, 3, 9, 9}, {4, 3, 3, 3}, {}},
      {{2, 4, 10, 7}, {6, 4, 3, 3}, {.stride = 2, .padding = 1}},
      {{1, 4, 8, 8}, {4, 2, 3, 3}, {.stride = 1, .padding = {2, 1}, .dilation = 2, .groups = 2}},
      {{3, 6, 5, 5}, {8, 6, 1, 1}, {}},
      {{2, 3, 7, 6}, {5, 3, 2, 3}, {.stride = {2, 1}, .padding = {1, 0}}},
  };
  for (auto& c : cases) {
    auto o = c.o;
    check_op("conv2d", {R(c.x, d), R(c.w, d), R({c.w[0]}, d)}, [o](auto& v) { return F::conv2d(v[0], v[1], v[2], o); },
             [o](auto& v) {
               return torch::conv2d(v[0], v[1], v[2], {o.stride.h, o.stride.w}, {o.padding.h, o.padding.w},
                                    {o.dilation.h, o.dilation.w}, o.groups);
             });
  }
}

TEST(ParityConvModules, PaddingModesConv1dReprs) {
  nk::manual_seed(9);
  for (std::string mode : {"zeros", "reflect", "replicate", "circular"}) {
    auto nm = nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 3, .out_channels = 4, .kernel_size = {3, 2},
                                                       .padding = "same", .dilation = {1, 2}, .padding_mode = mode});
    auto o = torch::nn::Conv2dOptions(3, 4, {3, 2}).padding(torch::kSame).dilation({1, 2});
    if (mode == "reflect") o.padding_mode(torch::kReflect);
    if (mode == "replicate") o.padding_mode(torch::kReplicate);
    if (mode == "circular") o.padding_mode(torch::kCircular);
    torch::nn::Conv2d tm(o);
    check_module("Conv2d same " + mode, *nm, *tm, {nk::randn({2, 3, 6, 7})}, [&](auto& v) { return nm(v[0]); },
                 [&](auto& v) { return tm(v[0]); });
  }
  {
    auto nm = nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 2, .out_channels = 2, .kernel_size = 3, .stride = 2,
                                                       .padding = 1, .padding_mode = "reflect"});
    torch::nn::Conv2d tm(torch::nn::Conv2dOptions(2, 2, 3).stride(2).padding(1).padding_mode(torch::kReflect));
    check_module("Conv2d stride 2 reflect", *nm, *tm, {nk::randn({1, 2, 7, 8})}, [&](auto& v) { return nm(v[0]); },
                 [&](auto& v) { return tm(v[0]); });
  }
  {
    auto nm = nn::make<nn::Conv1d>(nn::Conv1d::Options{.in_channels = 4, .out_channels = 6, .kernel_size = 3, .stride = 2,
                                                       .padding = 1, .dilation = 2, .groups = 2});
    torch::nn::Conv1d tm(torch::nn::Conv1dOptions(4, 6, 3).stride(2).padding(1).dilation(2).groups(2));
    check_module("Conv1d", *nm, *tm, {nk::randn({3, 4, 11})}, [&](auto& v) { return nm(v[0]); },
                 [&](auto& v) { return tm(v[0]); });
    EXPECT_EQ(nm->repr(), "Conv1d(4, 6, kernel_size=(3,), stride=(2,), padding=(1,), dilation=(2,), groups=2)");
  }
  {
    auto nm = nn::make<nn::Conv1d>(nn::Conv1d::Options{.in_channels = 2, .out_channels = 3, .kernel_size = 4, .padding = "same",
                                                       .padding_mode = "circular"});
    torch::nn::Conv1d tm(torch::nn::Conv1dOptions(2, 3, 4).padding(torch::kSame).padding_mode(torch::kCircular));
    check_module("Conv1d same circular", *nm, *tm, {nk::randn({2, 2, 9})}, [&](auto& v) { return nm(v[0]); },
                 [&](auto& v) { return tm(v[0]); });
  }
  EXPECT_EQ(nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 1, .out_channels = 1, .kernel_size = 3, .padding = "same", .padding_mode = "reflect"})->repr(),
            "Conv2d(1, 1, kernel_size=(3, 3), stride=(1, 1), padding=same, padding_mode=reflect)");
}

TEST(ParityConvModules, ConvTranspose2d) {
  nk::manual_seed(31);
  struct TC {
    int64_t cin, cout, k, stride, pad, outpad, groups, dil;
  };
  for (TC c : {TC{3, 4, 3, 2, 1, 1, 1, 1}, TC{4, 6, 2, 1, 0, 0, 2, 1}, TC{2, 2, 3, 3, 2, 1, 1, 2}, TC{4, 4, 1, 2, 0, 0, 4, 1}}) {
    auto nm = nn::make<nn::ConvTranspose2d>(nn::ConvTranspose2d::Options{
        .in_channels = c.cin, .out_channels = c.cout, .kernel_size = c.k, .stride = c.stride, .padding = c.pad,
        .output_padding = c.outpad, .groups = c.groups, .dilation = c.dil});
    torch::nn::ConvTranspose2d tm(torch::nn::ConvTranspose2dOptions(c.cin, c.cout, c.k)
                                      .stride(c.stride).padding(c.pad).output_padding(c.outpad).groups(c.groups)
                                      .dilation(c.dil));
    check_module("ConvTranspose2d", *nm, *tm, {nk::randn({2, c.cin, 5, 4})}, [&](auto& v) { return nm(v[0]); },
                 [&](auto& v) { return tm(v[0]); });
  }
  EXPECT_EQ(nn::make<nn::ConvTranspose2d>(nn::ConvTranspose2d::Options{.in_channels = 4, .out_channels = 2, .kernel_size = 3,
                                                                       .stride = 2, .padding = 1, .output_padding = 1})
                ->repr(),
            "ConvTranspose2d(4, 2, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))");
}

TEST(ParityConvModules, DefaultInitDistribution) {
  // Same seed-independent law: every weight within PyTorch's bound 1/sqrt(fan_in), and the
  // empirical std matching a uniform on that interval.
  auto conv = nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 16, .out_channels = 64, .kernel_size = 3});
  double bound = 1.0 / std::sqrt(16.0 * 9);
  EXPECT_LE(conv->weight.abs().max().item<double>(), bound);
  EXPECT_NEAR(conv->weight.std().item<double>(), bound / std::sqrt(3.0), 0.05 * bound);
  torch::nn::Conv2d tc(torch::nn::Conv2dOptions(16, 64, 3));
  EXPECT_NEAR(tc->weight.std().item<double>(), conv->weight.std().item<double>(), 0.05 * bound);
}

NNKIT_PARITY_DTYPES(ParityConv);
