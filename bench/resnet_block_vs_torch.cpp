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
#include "parity/torch_twins.h"  // the LibTorch twin of nnkit::models::BasicBlock
#include <vector>

namespace nn = nnkit::nn;


int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : omp_get_max_threads();
  int64_t N = argc > 2 ? std::atoll(argv[2]) : 8, C = 64, H = 56;
  int reps = argc > 3 ? std::atoi(argv[3]) : 7;
  bench::set_threads(threads);
  nnkit::manual_seed(0);
  torch::manual_seed(0);

  // The project's one ResNet block (torchvision's BasicBlock) in both libraries, same weights.
  auto nk = nn::make<nnkit::models::BasicBlock>(C, C);
  parity::TorchBasicBlockImpl tb(C, C);
  parity::load_from_torch(*nk, tb);
  nnkit::Tensor nx = nnkit::randn({N, C, H, H}, {.requires_grad = true});
  torch::Tensor tx = torch::from_blob(nx.data_ptr<float>(), {N, C, H, H}).clone().requires_grad_(true);
  double flops = 2.0 * 2 * N * C * C * 9 * H * H;  // two 3x3 convs, forward

  nk->train();
  tb.train();
  bench::print_config(threads);
  {
    // Both sides compute the same block before anything is timed (train mode: batch statistics;
    // the running statistics this updates are the same on both sides).
    nnkit::Tensor y = (*nk)(nx);
    torch::Tensor ty = tb.forward(tx);
    bench::check_same("train forward", y, ty);
    y.sum().backward();
    ty.sum().backward();
    bench::check_same("input gradient", nx.grad(), tx.grad());
  }
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
  {
    nnkit::NoGradGuard g;
    torch::NoGradGuard tg;
    bench::check_same("eval forward", (*nk)(nx), tb.forward(tx));
  }
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
