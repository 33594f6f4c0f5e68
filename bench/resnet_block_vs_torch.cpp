// ResNet basic block (64 -> 64 channels, 3x3 convs, BatchNorm, ReLU, identity skip) at 56x56,
// batch 8: nnkit vs LibTorch on the same machine, same threads, same work, in one run.
//   train: forward + backward in train mode;  infer: forward in eval mode without grad.
// Prints a markdown table with the ratio nnkit / LibTorch (lower is better for nnkit).
#include <omp.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <nnkit/nnkit.h>

#include "bench_util.h"
#include <vector>

namespace nn = nnkit::nn;


namespace {

struct NkBlock : nn::Module {
  NkBlock(int64_t c) {
    conv1 = register_module<nn::Conv2d>("conv1", {.in_channels = c, .out_channels = c, .kernel_size = 3, .padding = 1, .bias = false});
    bn1 = register_module<nn::BatchNorm2d>("bn1", c);
    conv2 = register_module<nn::Conv2d>("conv2", {.in_channels = c, .out_channels = c, .kernel_size = 3, .padding = 1, .bias = false});
    bn2 = register_module<nn::BatchNorm2d>("bn2", c);
  }
  nnkit::Tensor forward(const nnkit::Tensor& x) override {
    auto h = bn1(conv1(x)).relu();
    return (bn2(conv2(h)) + x).relu();
  }
  nn::Ptr<nn::Conv2d> conv1, conv2;
  nn::Ptr<nn::BatchNorm2d> bn1, bn2;
};

struct TBlockImpl : torch::nn::Module {
  TBlockImpl(int64_t c)
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, c, 3).padding(1).bias(false)))),
        bn1(register_module("bn1", torch::nn::BatchNorm2d(c))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, c, 3).padding(1).bias(false)))),
        bn2(register_module("bn2", torch::nn::BatchNorm2d(c))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::relu(bn1(conv1(x)));
    return torch::relu(bn2(conv2(h)) + x);
  }
  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Conv2d conv2;
  torch::nn::BatchNorm2d bn2;
};
}  // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : omp_get_max_threads();
  int64_t N = argc > 2 ? std::atoll(argv[2]) : 8, C = 64, H = 56;
  int reps = argc > 3 ? std::atoi(argv[3]) : 7;
  bench::set_threads(threads);
  nnkit::manual_seed(0);
  torch::manual_seed(0);

  auto nk = nn::make<NkBlock>(C);
  nnkit::Tensor nx = nnkit::randn({N, C, H, H}, {.requires_grad = true});
  TBlockImpl tb(C);
  torch::Tensor tx = torch::randn({N, C, H, H}).requires_grad_(true);
  double flops = 2.0 * 2 * N * C * C * 9 * H * H;  // two 3x3 convs, forward

  nk->train();
  tb.train();
  // Alternating nnkit and LibTorch runs (median of each), so that drift on a shared machine
  // hits both.
  auto [nk_train, t_train] = bench::median_ms_interleaved(
      [&] {
        nk->zero_grad();
        nx.mutable_grad() = nnkit::Tensor();
        nk->forward(nx).sum().backward();
      },
      [&] {
        tb.zero_grad();
        tx.mutable_grad().reset();
        tb.forward(tx).sum().backward();
      },
      reps);
  nk->eval();
  tb.eval();
  auto [nk_inf, t_inf] = bench::median_ms_interleaved(
      [&] {
        nnkit::NoGradGuard g;
        (*nk)(nx);
      },
      [&] {
        torch::NoGradGuard g;
        tb.forward(tx);
      },
      reps);

  std::printf("ResNet basic block, %lld x %lld x %lld x %lld float32, %d thread(s), median of %d\n\n", (long long)N,
              (long long)C, (long long)H, (long long)H, threads, reps);
  std::printf("| work | nnkit ms | LibTorch ms | ratio nnkit/LibTorch | nnkit GFLOP/s (convs) |\n|---|---|---|---|---|\n");
  std::printf("| train fwd+bwd | %.1f | %.1f | %.2f | %.0f |\n", nk_train, t_train, nk_train / t_train, 3 * flops / nk_train / 1e6);
  std::printf("| eval forward, no grad | %.1f | %.1f | %.2f | %.0f |\n", nk_inf, t_inf, nk_inf / t_inf, flops / nk_inf / 1e6);
  return 0;
}
