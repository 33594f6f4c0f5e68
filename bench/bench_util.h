#pragma once
// Timing and thread setup shared by the nnkit-vs-LibTorch benchmarks.
#include <omp.h>
#include <torch/torch.h>

#include "timing.h"

// LibTorch on Debian does its GEMMs in the system BLAS (OpenBLAS once libopenblas0-pthread is
// installed, as scripts/setup.sh does), which runs its own threads: torch::set_num_threads does
// not reach them. This does, when OpenBLAS is the BLAS loaded.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace bench {

// The same thread count for nnkit (OpenMP), LibTorch and LibTorch's BLAS.
inline void set_threads(int n) {
  omp_set_num_threads(n);
  torch::set_num_threads(n);
  if (openblas_set_num_threads) openblas_set_num_threads(n);
}

inline bool libtorch_uses_openblas() { return openblas_set_num_threads != nullptr; }


// Nanoseconds per call of f: the median over `batches` timed batches of `inner` calls, after
// one warm-up batch.
template <typename F>
double ns_per_call(F&& f, int inner, int batches) {
  for (int i = 0; i < inner; ++i) f();
  std::vector<double> t;
  for (int b = 0; b < batches; ++b) {
    auto a = std::chrono::steady_clock::now();
    for (int i = 0; i < inner; ++i) f();
    t.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - a).count() / inner);
  }
  return median(std::move(t));
}

}  // namespace bench
