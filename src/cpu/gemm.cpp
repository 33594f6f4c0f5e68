// GEMM through Eigen's blocked, vectorized product (OpenMP-parallel for large products).
#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "cpu/kernels.h"
#include "cpu/packed_gemm.h"

namespace nnkit::cpu {

namespace {
template <typename T, int Order>
using MapC = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Order>, 0, Eigen::OuterStride<>>;
template <typename T>
using MapOut = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Eigen::OuterStride<>>;

template <typename T, typename MA, typename MB>
void product(const MA& a, const MB& b, T* C, int64_t M, int64_t N, int64_t ldc, bool accumulate) {
  MapOut<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (accumulate)
    c.noalias() += a * b;
  else
    c.noalias() = a * b;
}

template <typename T, typename MA>
void with_b(const MA& a, int64_t N, int64_t K, const T* B, int64_t b_rs, int64_t b_cs, T* C, int64_t M, int64_t ldc,
            bool accumulate) {
  if (b_cs == 1)
    product<T>(a, MapC<T, Eigen::RowMajor>(B, K, N, Eigen::OuterStride<>(b_rs)), C, M, N, ldc, accumulate);
  else
    product<T>(a, MapC<T, Eigen::ColMajor>(B, K, N, Eigen::OuterStride<>(b_cs)), C, M, N, ldc, accumulate);
}
// Small products (up to 32x32x32): Eigen's packing and blocking cost more than the arithmetic
// here. Instead: tiles of 4 rows x one vector register of columns, accumulated in registers
// over k (four independent FMA chains hide the FMA latency), then stored once.
constexpr int64_t kSmallProduct = 32 * 32 * 32;

template <typename T>
struct Vec64;
template <>
struct Vec64<float> {
  typedef float type __attribute__((vector_size(64)));
};
template <>
struct Vec64<double> {
  typedef double type __attribute__((vector_size(64)));
};
template <>
struct Vec64<int64_t> {
  typedef int64_t type __attribute__((vector_size(64)));
};

template <typename T, bool BContiguous>
void small_gemm_impl(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_rs, int64_t a_cs, const T* B,
                     int64_t b_rs, int64_t b_cs, T* C, int64_t ldc, bool accumulate) {
  // GCC/Clang vector extensions: one 64-byte vector (an AVX-512 register; two or four
  // narrower ones elsewhere), portable without intrinsics.
  constexpr int64_t W = 64 / sizeof(T);
  using Vec = typename Vec64<T>::type;
  auto load_b = [&](int64_t k, int64_t j0, int64_t cols) {
    const T* b = B + k * b_rs + j0 * (BContiguous ? 1 : b_cs);
    Vec bv = {};
    if (BContiguous && cols == W) {
      std::memcpy(&bv, b, sizeof(Vec));
    } else {
      for (int64_t j = 0; j < cols; ++j) bv[j] = b[BContiguous ? j : j * b_cs];
    }
    return bv;
  };
  auto store = [&](const Vec& v, int64_t i, int64_t j0, int64_t cols) {
    T* c = C + i * ldc + j0;
    if (cols == W) {
      Vec out = v;
      if (accumulate) {
        Vec old;
        std::memcpy(&old, c, sizeof(Vec));
        out += old;
      }
      std::memcpy(c, &out, sizeof(Vec));
    } else {
      for (int64_t j = 0; j < cols; ++j) c[j] = accumulate ? T(c[j] + v[j]) : v[j];
    }
  };
  int64_t i0 = 0;
  // Eight rows at a time: eight independent accumulator chains in registers hide the FMA
  // latency; then four, then one.
  // Sixteen rows at a time, over a k-major copy of the 16-row panel of A: sixteen
  // accumulator vectors, and the broadcasts read fixed offsets (with A's own strides the
  // compiler runs out of registers for the addresses).
  if (M >= 16 && K <= 512) {
    alignas(64) T ap[16 * 512];
    for (; i0 + 16 <= M; i0 += 16) {
      for (int64_t k = 0; k < K; ++k)
        for (int64_t r = 0; r < 16; ++r) ap[k * 16 + r] = A[(i0 + r) * a_rs + k * a_cs];
      for (int64_t j0 = 0; j0 < N; j0 += W) {
        const int64_t cols = std::min<int64_t>(W, N - j0);
        Vec c[16] = {};
        const T* a = ap;
        for (int64_t k = 0; k < K; ++k, a += 16) {
          const Vec bv = load_b(k, j0, cols);
#pragma GCC unroll 16
          for (int r = 0; r < 16; ++r) c[r] += a[r] * bv;
        }
#pragma GCC unroll 16
        for (int r = 0; r < 16; ++r) store(c[r], i0 + r, j0, cols);
      }
    }
  }
  for (; i0 + 8 <= M; i0 += 8) {
    for (int64_t j0 = 0; j0 < N; j0 += W) {
      const int64_t cols = std::min<int64_t>(W, N - j0);
      Vec c0 = {}, c1 = {}, c2 = {}, c3 = {}, c4 = {}, c5 = {}, c6 = {}, c7 = {};
      const T* a = A + i0 * a_rs;
      for (int64_t k = 0; k < K; ++k, a += a_cs) {
        const Vec bv = load_b(k, j0, cols);
        c0 += a[0] * bv;
        c1 += a[a_rs] * bv;
        c2 += a[2 * a_rs] * bv;
        c3 += a[3 * a_rs] * bv;
        c4 += a[4 * a_rs] * bv;
        c5 += a[5 * a_rs] * bv;
        c6 += a[6 * a_rs] * bv;
        c7 += a[7 * a_rs] * bv;
      }
      store(c0, i0, j0, cols);
      store(c1, i0 + 1, j0, cols);
      store(c2, i0 + 2, j0, cols);
      store(c3, i0 + 3, j0, cols);
      store(c4, i0 + 4, j0, cols);
      store(c5, i0 + 5, j0, cols);
      store(c6, i0 + 6, j0, cols);
      store(c7, i0 + 7, j0, cols);
    }
  }
  for (; i0 + 4 <= M; i0 += 4) {
    for (int64_t j0 = 0; j0 < N; j0 += W) {
      const int64_t cols = std::min<int64_t>(W, N - j0);
      Vec c0 = {}, c1 = {}, c2 = {}, c3 = {};
      const T* a = A + i0 * a_rs;
      for (int64_t k = 0; k < K; ++k, a += a_cs) {
        const Vec bv = load_b(k, j0, cols);
        c0 += a[0] * bv;
        c1 += a[a_rs] * bv;
        c2 += a[2 * a_rs] * bv;
        c3 += a[3 * a_rs] * bv;
      }
      store(c0, i0, j0, cols);
      store(c1, i0 + 1, j0, cols);
      store(c2, i0 + 2, j0, cols);
      store(c3, i0 + 3, j0, cols);
    }
  }
  for (; i0 < M; ++i0) {
    for (int64_t j0 = 0; j0 < N; j0 += W) {
      const int64_t cols = std::min<int64_t>(W, N - j0);
      Vec c0 = {};
      const T* a = A + i0 * a_rs;
      for (int64_t k = 0; k < K; ++k, a += a_cs) c0 += a[0] * load_b(k, j0, cols);
      store(c0, i0, j0, cols);
    }
  }
}

template <typename T>
void small_gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_rs, int64_t a_cs, const T* B, int64_t b_rs,
                int64_t b_cs, T* C, int64_t ldc, bool accumulate) {
  if (b_cs == 1)
    small_gemm_impl<T, true>(M, N, K, A, a_rs, a_cs, B, b_rs, b_cs, C, ldc, accumulate);
  else
    small_gemm_impl<T, false>(M, N, K, A, a_rs, a_cs, B, b_rs, b_cs, C, ldc, accumulate);
}
}  // namespace

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_rs, int64_t a_cs, const T* B, int64_t b_rs,
          int64_t b_cs, T* C, int64_t ldc, bool accumulate) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate) MapOut<T>(C, M, N, Eigen::OuterStride<>(ldc)).setZero();
    return;
  }
  if (M * N * K <= kSmallProduct) {
    small_gemm<T>(M, N, K, A, a_rs, a_cs, B, b_rs, b_cs, C, ldc, accumulate);
    return;
  }
  if constexpr (std::is_floating_point_v<T>) {
    // Our packed kernel beats Eigen's product here (1024^3 float, one Zen 4 core: 101 vs 82
    // GFLOP/s); Eigen stays for integer products.
    packed::gemm<T>(M, N, K, A, a_rs, a_cs, B, b_rs, b_cs, C, ldc, accumulate);
    return;
  }
  // Eigen rejects an outer stride smaller than the inner size for degenerate shapes.
  if (a_cs == 1 && a_rs < K) a_rs = K;
  if (a_rs == 1 && a_cs < M) a_cs = M;
  if (b_cs == 1 && b_rs < N) b_rs = N;
  if (b_rs == 1 && b_cs < K) b_cs = K;
  if (a_cs == 1)
    with_b<T>(MapC<T, Eigen::RowMajor>(A, M, K, Eigen::OuterStride<>(a_rs)), N, K, B, b_rs, b_cs, C, M, ldc, accumulate);
  else
    with_b<T>(MapC<T, Eigen::ColMajor>(A, M, K, Eigen::OuterStride<>(a_cs)), N, K, B, b_rs, b_cs, C, M, ldc, accumulate);
}

template void gemm<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*, int64_t, int64_t,
                          float*, int64_t, bool);
template void gemm<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t, const double*, int64_t, int64_t,
                           double*, int64_t, bool);
template void gemm<int64_t>(int64_t, int64_t, int64_t, const int64_t*, int64_t, int64_t, const int64_t*, int64_t,
                            int64_t, int64_t*, int64_t, bool);

}  // namespace nnkit::cpu
