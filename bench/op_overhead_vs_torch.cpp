// Per-op overhead on tiny tensors and large-GEMM throughput: nnkit vs LibTorch in one run.
// Same thread count for both; each number is the median of 7 timed batches after warm-up.
#include <omp.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <nnkit/nnkit.h>

#include "bench_util.h"
#include <vector>

namespace {
using bench::set_threads;

// One table row: nnkit's and LibTorch's batches alternate (11 of each), medians compared.
template <typename F, typename G>
void row(const char* name, F&& nk, G&& th, int inner) {
  auto [a, b] = bench::ns_per_call_interleaved(nk, th, inner, 11);
  std::printf("| %s | %.0f ns | %.0f ns | %.2f |\n", name, a, b, a / b);
}
}  // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  set_threads(threads);
  bench::print_config(threads);
  const int N = 20000;

  // LibTorch's operands are copies of nnkit's, so both sides compute the same values.
  auto T = [](const nnkit::Tensor& t, bool grad = false) {
    return torch::from_blob(t.data_ptr<float>(), t.sizes().vec()).clone().requires_grad_(grad);
  };
  nnkit::Tensor a = nnkit::randn({16}), b = nnkit::randn({16});
  torch::Tensor ta = T(a), tb = T(b);
  nnkit::Tensor m = nnkit::randn({16, 16}), m2 = nnkit::randn({16, 16});
  torch::Tensor tm = T(m), tm2 = T(m2);
  nnkit::Tensor ga = nnkit::randn({16}, {.requires_grad = true}), gb = nnkit::randn({16}, {.requires_grad = true});
  torch::Tensor tga = T(ga, true), tgb = T(gb, true);
  nnkit::Tensor gm = nnkit::randn({16, 16}, {.requires_grad = true}), gm2 = nnkit::randn({16, 16}, {.requires_grad = true});
  torch::Tensor tgm = T(gm, true), tgm2 = T(gm2, true);
  bench::check_same("add", a + b, ta + tb, 1e-6);
  bench::check_same("mul", a * b, ta * tb, 1e-6);
  bench::check_same("matmul 16x16", gm.matmul(gm2), tgm.matmul(tgm2), 1e-5);

  std::printf("Tiny-op overhead (16 elements, 16x16 matmul), %d thread(s), medians of 11 batches of %d calls,\n"
              "nnkit and LibTorch batches alternating\n\n",
              threads, N);
  std::printf("| op | nnkit | LibTorch | ratio nnkit/LibTorch |\n|---|---|---|---|\n");
  row("add, no grad", [&] { nnkit::Tensor c = a + b; }, [&] { torch::Tensor c = ta + tb; }, N);
  row("mul, no grad", [&] { nnkit::Tensor c = a * b; }, [&] { torch::Tensor c = ta * tb; }, N);
  row("matmul 16x16, no grad", [&] { nnkit::Tensor c = m.matmul(m2); }, [&] { torch::Tensor c = tm.matmul(tm2); }, N);
  row("add, inputs require grad", [&] { nnkit::Tensor c = ga + gb; }, [&] { torch::Tensor c = tga + tgb; }, N);
  row("mul, inputs require grad", [&] { nnkit::Tensor c = ga * gb; }, [&] { torch::Tensor c = tga * tgb; }, N);
  row("matmul 16x16, inputs require grad", [&] { nnkit::Tensor c = gm.matmul(gm2); },
      [&] { torch::Tensor c = tgm.matmul(tgm2); }, N);
  row("matmul 16x16 fwd+bwd", [&] { gm.matmul(gm2).sum().backward(); }, [&] { tgm.matmul(tgm2).sum().backward(); },
      N / 4);

  // Large GEMM throughput, single-threaded and on two threads (this project's CI machines have
  // two cores).
  nnkit::Tensor A = nnkit::randn({1024, 1024}), B = nnkit::randn({1024, 1024});
  torch::Tensor TA = torch::from_blob(A.data_ptr<float>(), {1024, 1024}).clone();
  torch::Tensor TB = torch::from_blob(B.data_ptr<float>(), {1024, 1024}).clone();
  bench::check_same("GEMM 1024^3", A.mm(B), TA.mm(TB), 1e-5);
  double flop = 2.0 * 1024 * 1024 * 1024;
  std::printf("\nLibTorch's BLAS: %s\n", bench::libtorch_uses_openblas() ? "OpenBLAS" : "not OpenBLAS (reference BLAS is slow)");
  std::printf("\n| large GEMM 1024^3 | nnkit GFLOP/s | LibTorch GFLOP/s | nnkit/LibTorch |\n|---|---|---|---|\n");
  for (int T : {1, 2}) {
    set_threads(T);
    auto [nk_ns, th_ns] = bench::ns_per_call_interleaved([&] { nnkit::Tensor c = A.mm(B); },
                                                         [&] { torch::Tensor c = TA.mm(TB); }, 5, 7);
    double nk = flop / nk_ns, th = flop / th_ns;
    std::printf("| %d thread%s | %.0f | %.0f | %.2f |\n", T, T > 1 ? "s" : "", nk, th, nk / th);
  }
  return 0;
}
