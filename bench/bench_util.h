#pragma once
// Timing and thread setup shared by the nnkit-vs-LibTorch benchmarks.
#include <omp.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nnkit/nnkit.h>
#include <stdexcept>
#include <string>

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

// One line naming the configuration both sides run in: threads, LibTorch's version and CPU
// capability (1.13 uses AVX2 kernels unless ATEN_CPU_CAPABILITY=avx512), its BLAS and the
// OpenBLAS core type when one is forced.
inline void print_config(int threads) {
  const char* cap = std::getenv("ATEN_CPU_CAPABILITY");
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  std::printf("config: %d thread(s) for nnkit (OpenMP) and LibTorch %s (intra-op threads %d, ATEN_CPU_CAPABILITY=%s, "
              "BLAS %s, OPENBLAS_CORETYPE=%s)\n",
              threads, TORCH_VERSION, torch::get_num_threads(), cap ? cap : "(default)",
              libtorch_uses_openblas() ? "OpenBLAS" : "LibTorch's own", core ? core : "(auto)");
}

// Before timing: both sides must have computed the same thing. Throws (the benchmark stops)
// when max |a - b| > tol * max |b|.
inline void check_same(const std::string& what, const nnkit::Tensor& a, const torch::Tensor& b, double tol = 1e-4) {
  nnkit::Tensor c = a.detach().contiguous().to(nnkit::kFloat64);
  torch::Tensor tb = b.detach().contiguous().to(torch::kFloat64);
  if (c.numel() != tb.numel()) throw std::runtime_error("check_same(" + what + "): element counts differ");
  const double* pa = c.data_ptr<double>();
  const double* pb = tb.data_ptr<double>();
  double err = 0, scale = 0;
  for (int64_t i = 0; i < c.numel(); ++i) {
    err = std::max(err, std::abs(pa[i] - pb[i]));
    scale = std::max(scale, std::abs(pb[i]));
  }
  if (!(err <= tol * std::max(scale, 1e-12)))
    throw std::runtime_error("check_same(" + what + "): nnkit and LibTorch differ, relative error " +
                             std::to_string(err / std::max(scale, 1e-12)));
  std::printf("checked: %s, nnkit = LibTorch within %.1e (relative error %.1e)\n", what.c_str(), tol,
              err / std::max(scale, 1e-12));
}


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
