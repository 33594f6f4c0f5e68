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
// here. Instead: tiles of R rows (16, then 8, 4, 1) x one vector of columns. The tile's rows of
// A are copied k-major (up to 512 k at a time), so the R broadcasts per k read fixed offsets
// (with A's own strides the compiler runs out of registers for the addresses), and the R
// accumulator vectors stay in registers: independent FMA chains hide the FMA latency.
constexpr int64_t kSmallProduct = 32 * 32 * 32;

template <typename T, bool BContiguous>
void small_gemm_impl(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_rs, int64_t a_cs, const T* B,
                     int64_t b_rs, int64_t b_cs, T* C, int64_t ldc, bool accumulate) {
  // GCC/Clang vector extensions: one 64-byte vector (an AVX-512 register; two or four
  // narrower ones elsewhere), portable without intrinsics.
  constexpr int64_t W = 64 / sizeof(T);
  constexpr int64_t KC = 512;
  using Vec = typename packed::Vec<T>::type;
  // (always_inline: they sit in the innermost loops of four instantiations of `rows`.)
  auto load_b = [&](int64_t k, int64_t j0, int64_t cols) __attribute__((always_inline)) {
    const T* b = B + k * b_rs + j0 * (BContiguous ? 1 : b_cs);
    Vec bv = {};
    if (BContiguous && cols == W) {
      std::memcpy(&bv, b, sizeof(Vec));
    } else {
      for (int64_t j = 0; j < cols; ++j) bv[j] = b[BContiguous ? j : j * b_cs];
    }
    return bv;
  };
  auto store = [&](const Vec& v, int64_t i, int64_t j0, int64_t cols, bool add) __attribute__((always_inline)) {
    T* c = C + i * ldc + j0;
    if (cols == W) {
      Vec out = v;
      if (add) {
        Vec old;
        std::memcpy(&old, c, sizeof(Vec));
        out += old;
      }
      std::memcpy(c, &out, sizeof(Vec));
    } else {
      for (int64_t j = 0; j < cols; ++j) c[j] = add ? T(c[j] + v[j]) : v[j];
    }
  };
  auto rows = [&]<int R>(int64_t i0) {
    alignas(64) T ap[R * KC];
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      const int64_t kc = std::min(KC, K - k0);
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t r = 0; r < R; ++r) ap[k * R + r] = A[(i0 + r) * a_rs + (k0 + k) * a_cs];
      for (int64_t j0 = 0; j0 < N; j0 += W) {
        const int64_t cols = std::min<int64_t>(W, N - j0);
        Vec c[R] = {};
        const T* a = ap;
        for (int64_t k = 0; k < kc; ++k, a += R) {
          const Vec bv = load_b(k0 + k, j0, cols);
#pragma GCC unroll 16
          for (int r = 0; r < R; ++r) c[r] += a[r] * bv;
        }
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) store(c[r], i0 + r, j0, cols, accumulate || k0 > 0);
      }
    }
  };
  int64_t i0 = 0;
  for (; i0 + 16 <= M; i0 += 16) rows.template operator()<16>(i0);
  for (; i0 + 8 <= M; i0 += 8) rows.template operator()<8>(i0);
  for (; i0 + 4 <= M; i0 += 4) rows.template operator()<4>(i0);
  for (; i0 < M; ++i0) rows.template operator()<1>(i0);
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
