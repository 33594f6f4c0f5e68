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


// Nanoseconds per call of f over one batch of `inner` calls.
template <typename F>
double batch_ns(F& f, int inner) {
  return elapsed_ms([&] {
           for (int i = 0; i < inner; ++i) f();
         }) * 1e6 / inner;
}

// Nanoseconds per call of f: the median over `batches` timed batches of `inner` calls, after
// one warm-up batch.
template <typename F>
double ns_per_call(F&& f, int inner, int batches) {
  batch_ns(f, inner);
  std::vector<double> t;
  for (int b = 0; b < batches; ++b) t.push_back(batch_ns(f, inner));
  return median(std::move(t));
}

// The same for f and g, their batches taken alternately (f, g, f, g, ...): this project's
// machines are shared, and a slow phase then hits both sides alike.
template <typename F, typename G>
std::pair<double, double> ns_per_call_interleaved(F&& f, G&& g, int inner, int batches) {
  batch_ns(f, inner);
  batch_ns(g, inner);
  std::vector<double> tf, tg;
  for (int b = 0; b < batches; ++b) {
    tf.push_back(batch_ns(f, inner));
    tg.push_back(batch_ns(g, inner));
  }
  return {median(std::move(tf)), median(std::move(tg))};
}

}  // namespace bench
