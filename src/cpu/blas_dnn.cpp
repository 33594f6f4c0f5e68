// The CPU backend's matrix products, convolutions and batch norm (mirrors cuda/blas_dnn.cpp,
// where cuBLAS and cuDNN do this work): the register-tiled small GEMM and the packed GEMM
// (gemm.cpp, packed_gemm.h), Winograd and im2col convolutions (conv.cpp), and a fused batch
// norm whose statistics are accumulated in double.
#include <cmath>
#include <vector>

#include "core/dispatch.h"
#include "cpu/backend.h"
#include "cpu/conv.h"
#include "cpu/kernels.h"
#include "cpu/loops.h"
#include "nnkit/ops.h"

namespace nnkit::detail {

namespace {

// Row and column strides of a gemm-ready matrix, with degenerate (size <= 1) dimensions
// normalized so that one stride is 1 and the other is a valid leading dimension.
std::pair<int64_t, int64_t> mat_strides(const Tensor& m) {
  int64_t rows = m.size(0), cols = m.size(1);
  if (cols <= 1 || m.stride(1) == 1) return {rows <= 1 ? std::max<int64_t>(cols, 1) : m.stride(0), 1};
  return {1, cols <= 1 ? std::max<int64_t>(rows, 1) : m.stride(1)};
}

void mm_kernel(const Tensor& out, const Tensor& a, const Tensor& b) {
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  if (M * N * K <= cpu::kSmallGemm) {  // any strides: no copies, no handle copies
    dispatch<kNumericTypes>(out.dtype(), "mm", [&]<typename T>() {
      cpu::gemm<T>(M, N, K, a.data_ptr<T>(), a.stride(0), a.stride(1), b.data_ptr<T>(), b.stride(0), b.stride(1),
                   out.data_ptr<T>(), N);
    });
    return;
  }
  Tensor A = gemm_ready(a), B = gemm_ready(b);
  // (plain variables, not structured bindings: clang < 16 cannot capture those in a lambda)
  const auto a_st = mat_strides(A), b_st = mat_strides(B);
  const int64_t a_rs = a_st.first, a_cs = a_st.second, b_rs = b_st.first, b_cs = b_st.second;
  dispatch<kNumericTypes>(out.dtype(), "mm", [&]<typename T>() {
    cpu::gemm<T>(M, N, K, A.data_ptr<T>(), a_rs, a_cs, B.data_ptr<T>(), b_rs, b_cs, out.data_ptr<T>(), N);
  });
}


// Fused batch norm over x viewed as [N, C, S] (contiguous): statistics per channel in double
// (two passes: mean, then the centred sum of squares), y = x * scale + shift in one pass, and
// a backward that needs two per-channel sums. Parallel over channels (statistics, backward
// sums) and over (n, c) rows (elementwise passes).
template <typename T>
void bn_channel_stats(const T* x, int64_t N, int64_t C, int64_t S, double* mean, double* var) {
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * S;
      double s = 0;
      // (omp simd: lets the compiler split the double sum over vector lanes; a plain loop is one
      // dependency chain, 4 cycles per element)
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < S; ++i) s += double(p[i]);
      sum += s;
    }
    const double m = sum / double(N * S);
    double sq = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * S;
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < S; ++i) {
        const double d = double(p[i]) - m;
        s += d * d;
      }
      sq += s;
    }
    mean[c] = m;
    var[c] = sq / double(N * S);
  }
}

template <typename T>
void bn_apply(const T* x, T* y, int64_t N, int64_t C, int64_t S, const double* scale, const double* shift) {
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
  for (int64_t r = 0; r < N * C; ++r) {
    const int64_t c = r % C;
    const T a = T(scale[c]), b = T(shift[c]);
    const T* p = x + r * S;
    T* q = y + r * S;
    for (int64_t i = 0; i < S; ++i) q[i] = p[i] * a + b;
  }
}

// sum_dy[c] = sum dy, sum_dy_xmu[c] = sum dy * (x - mean[c]).
template <typename T>
void bn_backward_sums(const T* x, const T* dy, int64_t N, int64_t C, int64_t S, const double* mean, double* sum_dy,
                      double* sum_dy_xmu) {
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
  for (int64_t c = 0; c < C; ++c) {
    double a = 0, b = 0;
    const double m = mean[c];
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * S;
      const T* g = dy + (n * C + c) * S;
      double sa = 0, sb = 0;
#pragma omp simd reduction(+ : sa, sb)
      for (int64_t i = 0; i < S; ++i) {
        sa += double(g[i]);
        sb += double(g[i]) * (double(p[i]) - m);
      }
      a += sa;
      b += sb;
    }
    sum_dy[c] = a;
    sum_dy_xmu[c] = b;
  }
}

// dx = k1[c] * dy + k2[c] * x + k3[c]  (covers both train-mode and eval-mode formulas).
template <typename T>
void bn_dx(const T* x, const T* dy, T* dx, int64_t N, int64_t C, int64_t S, const double* k1, const double* k2,
           const double* k3) {
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
  for (int64_t r = 0; r < N * C; ++r) {
    const int64_t c = r % C;
    const T a = T(k1[c]), b = T(k2[c]), d = T(k3[c]);
    const T* p = x + r * S;
    const T* g = dy + r * S;
    T* q = dx + r * S;
    for (int64_t i = 0; i < S; ++i) q[i] = g[i] * a + p[i] * b + d;
  }
}
}  // namespace

void CpuBackend::gemm(const Tensor& out, const Tensor& a, const Tensor& b) const {
  if (out.dim() == 2) {
    mm_kernel(out, a, b);
    return;
  }
  cpu::parallel_for(out.size(0), 1, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i)
      mm_kernel(out.select(0, i), a.select(0, a.size(0) == 1 ? 0 : i), b.select(0, b.size(0) == 1 ? 0 : i));
  });
}

void CpuBackend::conv2d_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                                const Tensor& out) const {
  dispatch<kFloatingTypes>(x.dtype(), "conv2d", [&]<typename T>() {
    cpu::conv2d_forward<T>(g, x.data_ptr<T>(), w.data_ptr<T>(), bias.defined() ? bias.data_ptr<T>() : nullptr,
                           out.data_ptr<T>());
  });
}

void CpuBackend::conv2d_backward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& dy,
                                 const Tensor& dx, const Tensor& dw, const Tensor& db) const {
  dispatch<kFloatingTypes>(x.dtype(), "conv2d_backward", [&]<typename T>() {
    cpu::conv2d_backward<T>(g, x.data_ptr<T>(), w.data_ptr<T>(), dy.data_ptr<T>(),
                            dx.defined() ? dx.data_ptr<T>() : nullptr, dw.defined() ? dw.data_ptr<T>() : nullptr,
                            db.defined() ? db.data_ptr<T>() : nullptr);
  });
}

namespace {
struct BnDims {
  int64_t N, C, S;
};
BnDims bn_dims(const Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1);
  return {N, C, C > 0 && N > 0 ? x.numel() / (N * C) : 0};
}
std::vector<double> per_channel(const Tensor& t, int64_t C, double fill) {
  std::vector<double> v(static_cast<size_t>(C), fill);
  if (!t.defined()) return v;
  Tensor d = t.detach().to(kFloat64).contiguous();
  for (int64_t c = 0; c < C; ++c) v[size_t(c)] = d.data_ptr<double>()[c];
  return v;
}
}  // namespace

void CpuBackend::batch_norm_train(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                                  const Tensor& y, Tensor& save_mean, Tensor& save_invstd, bool want_batch_stats,
                                  Tensor& batch_mean, Tensor& batch_var) const {
  // (plain variables: clang < 16 cannot capture structured bindings in a lambda)
  const BnDims dims = bn_dims(x);
  const int64_t N = dims.N, C = dims.C, S = dims.S;
  const int64_t M = N * S;
  std::vector<double> mean(static_cast<size_t>(C)), var(static_cast<size_t>(C));
  dispatch<kFloatingTypes>(x.dtype(), "batch_norm", [&]<typename T>() {
    bn_channel_stats<T>(x.data_ptr<T>(), N, C, S, mean.data(), var.data());
  });
  std::vector<double> w = per_channel(weight, C, 1.0), b = per_channel(bias, C, 0.0);
  std::vector<double> invstd(static_cast<size_t>(C)), scale(static_cast<size_t>(C)), shift(static_cast<size_t>(C));
  for (size_t c = 0; c < size_t(C); ++c) {
    invstd[c] = 1.0 / std::sqrt(var[c] + eps);
    scale[c] = w[c] * invstd[c];
    shift[c] = b[c] - mean[c] * scale[c];
  }
  dispatch<kFloatingTypes>(x.dtype(), "batch_norm", [&]<typename T>() {
    bn_apply<T>(x.data_ptr<T>(), y.data_ptr<T>(), N, C, S, scale.data(), shift.data());
  });
  save_mean = from_vector(mean);
  save_invstd = from_vector(invstd);
  if (want_batch_stats) {
    for (double& v : var) v *= double(M) / double(M - 1);
    batch_mean = save_mean;
    batch_var = from_vector(var);
  }
}

void CpuBackend::batch_norm_apply(const Tensor& x, const Tensor& scale, const Tensor& shift, const Tensor& y) const {
  // (plain variables: clang < 16 cannot capture structured bindings in a lambda)
  const BnDims dims = bn_dims(x);
  const int64_t N = dims.N, C = dims.C, S = dims.S;
  dispatch<kFloatingTypes>(x.dtype(), "batch_norm", [&]<typename T>() {
    bn_apply<T>(x.data_ptr<T>(), y.data_ptr<T>(), N, C, S, scale.data_ptr<double>(), shift.data_ptr<double>());
  });
}

void CpuBackend::batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight, const Tensor& save_mean,
                                     const Tensor& save_invstd, double, const Tensor& dx, const Tensor& dweight,
                                     const Tensor& dbias) const {
  // (plain variables: clang < 16 cannot capture structured bindings in a lambda)
  const BnDims dims = bn_dims(x);
  const int64_t N = dims.N, C = dims.C, S = dims.S;
  const int64_t M = N * S;
  const double* mean = save_mean.data_ptr<double>();
  const double* invstd = save_invstd.data_ptr<double>();
  std::vector<double> w = per_channel(weight, C, 1.0);
  std::vector<double> sum_dy(static_cast<size_t>(C)), sum_dy_xmu(static_cast<size_t>(C));
  dispatch<kFloatingTypes>(x.dtype(), "batch_norm_backward", [&]<typename T>() {
    bn_backward_sums<T>(x.data_ptr<T>(), dy.data_ptr<T>(), N, C, S, mean, sum_dy.data(), sum_dy_xmu.data());
  });
  if (dx.defined()) {
    std::vector<double> k1(static_cast<size_t>(C)), k2(static_cast<size_t>(C)), k3(static_cast<size_t>(C));
    for (size_t c = 0; c < size_t(C); ++c) {
      // dx = w*invstd * (dy - sum_dy/M - (x - mean) * invstd^2 * sum_dy_xmu / M)
      const double a = w[c] * invstd[c], proj = invstd[c] * invstd[c] * sum_dy_xmu[c] / double(M);
      k1[c] = a;
      k2[c] = -a * proj;
      k3[c] = a * (mean[c] * proj - sum_dy[c] / double(M));
    }
    dispatch<kFloatingTypes>(x.dtype(), "batch_norm_backward", [&]<typename T>() {
      bn_dx<T>(x.data_ptr<T>(), dy.data_ptr<T>(), dx.data_ptr<T>(), N, C, S, k1.data(), k2.data(), k3.data());
    });
  }
  if (dweight.defined()) {
    std::vector<double> v(static_cast<size_t>(C));
    for (size_t c = 0; c < size_t(C); ++c) v[c] = sum_dy_xmu[c] * invstd[c];
    copy(dweight, from_vector(v));
  }
  if (dbias.defined()) copy(dbias, from_vector(sum_dy));
}

}  // namespace nnkit::detail
