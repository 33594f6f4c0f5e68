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
// Small products (up to 32x32x32, kSmallGemm): Eigen's packing and blocking cost more than the
// arithmetic here. Instead: tiles of R rows x one vector of columns, the R accumulator vectors
// in registers (independent FMA chains hide the FMA latency), each step one vector of B's row
// k times R broadcasts of A's column k. A is read where it lies when it is row-major (R = 8
// rows; with 16, the compiler runs out of registers for the row addresses) or column-major
// (R = 16: the R values are adjacent); other layouts copy the tile's rows k-major first (up
// to 512 k at a time). Reading in place instead of copying took a 16x16x16 float product from
// 95 to 46 ns.
// One tile: C rows [0, R) x all N columns (+= when add) = sum over k < kc of a(r, k) * B[k, :].
// A plain function with everything in parameters: as a lambda capturing the caller's frame,
// GCC kept the row offsets on the stack and re-loaded them for every FMA.
template <typename T, int R, bool BContiguous, typename AElem>
__attribute__((noinline)) void small_tile(int64_t N, int64_t kc, AElem a, const T* B, int64_t b_rs,
                                                      int64_t b_cs, T* C, int64_t ldc, bool add) {
  // GCC/Clang vector extensions: one machine vector (packed::kVecBytes: an AVX-512 or an AVX2
  // register), portable without intrinsics.
  constexpr int64_t W = packed::kVecBytes / sizeof(T);
  using Vec = typename packed::Vec<T>::type;
  for (int64_t j0 = 0; j0 < N; j0 += W) {
    const int64_t cols = std::min<int64_t>(W, N - j0);
    Vec c[R] = {};
    if (BContiguous && cols == W) {  // (a loop of its own: one B vector load, nothing spilled)
      const T* b = B + j0;
      for (int64_t k = 0; k < kc; ++k, b += b_rs) {
        Vec bv;
        std::memcpy(&bv, b, sizeof(Vec));
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) c[r] += a(r, k) * bv;
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        const T* b = B + k * b_rs + j0 * (BContiguous ? 1 : b_cs);
        Vec bv = {};
        for (int64_t j = 0; j < cols; ++j) bv[j] = b[BContiguous ? j : j * b_cs];
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) c[r] += a(r, k) * bv;
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      T* out = C + r * ldc + j0;
      if (cols == W) {
        Vec v = c[r];
        if (add) {
          Vec old;
          std::memcpy(&old, out, sizeof(Vec));
          v += old;
        }
        std::memcpy(out, &v, sizeof(Vec));
      } else {
        for (int64_t j = 0; j < cols; ++j) out[j] = add ? T(out[j] + c[r][j]) : c[r][j];
      }
    }
  }
}

// Accessors for A's tile: a(r, k) is element (r, k) of the tile.
template <typename T>
struct RowMajorA {  // row r starts at p + r * ld
  const T* p;
  int64_t ld;
  T operator()(int r, int64_t k) const { return p[r * ld + k]; }
};
template <typename T>
struct ColMajorA {  // column k starts at p + k * ld: the R values are adjacent
  const T* p;
  int64_t ld;
  T operator()(int r, int64_t k) const { return p[k * ld + r]; }
};
template <typename T, int R>
struct PackedA {  // the tile copied k-major
  const T* p;
  T operator()(int r, int64_t k) const { return p[k * R + r]; }
};

// Small products (up to 32x32x32, kSmallGemm): Eigen's packing and blocking cost more than the
// arithmetic here. Instead: tiles of R rows x one vector of columns, the R accumulator vectors
// in registers (independent FMA chains hide the FMA latency), each step one vector of B's row
// k times R broadcasts of A's column k. A is read where it lies when it is row-major (R = 8
// rows: with 16 the compiler runs out of registers for the row addresses) or column-major
// (R = 16); other layouts copy the tile's rows k-major first (up to 512 k at a time). Reading
// in place instead of copying took a 16x16x16 float product from 95 to 46 ns.
template <typename T, bool BContiguous>
void small_gemm_impl(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_rs, int64_t a_cs, const T* B,
                     int64_t b_rs, int64_t b_cs, T* C, int64_t ldc, bool accumulate) {
  constexpr int64_t KC = 512;
  auto rows = [&]<int R>(int64_t i0) {
    T* c = C + i0 * ldc;
    if (a_cs == 1) {
      small_tile<T, R, BContiguous>(N, K, RowMajorA<T>{A + i0 * a_rs, a_rs}, B, b_rs, b_cs, c, ldc, accumulate);
    } else if (a_rs == 1) {
      small_tile<T, R, BContiguous>(N, K, ColMajorA<T>{A + i0, a_cs}, B, b_rs, b_cs, c, ldc, accumulate);
    } else {
      alignas(64) T ap[R * KC];
      for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int64_t kc = std::min(KC, K - k0);
        for (int64_t k = 0; k < kc; ++k)
          for (int64_t r = 0; r < R; ++r) ap[k * R + r] = A[(i0 + r) * a_rs + (k0 + k) * a_cs];
        small_tile<T, R, BContiguous>(N, kc, PackedA<T, R>{ap}, B + k0 * b_rs, b_rs, b_cs, c, ldc,
                                      accumulate || k0 > 0);
      }
    }
  };
  int64_t i0 = 0;
  if (a_cs != 1)
    for (; i0 + 16 <= M; i0 += 16) rows.template operator()<16>(i0);
  for (; i0 + 8 <= M; i0 += 8) rows.template operator()<8>(i0);
  for (; i0 + 4 <= M; i0 += 4) rows.template operator()<4>(i0);
  for (; i0 < M; ++i0) rows.template operator()<1>(i0);
}

template <typename T>
void small_gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_rs, int64_t a_cs, const T* B, int64_t b_rs,
                int64_t b_cs, T* C, int64_t ldc, bool accumulate) {
  if (b_cs == 1) {
    small_gemm_impl<T, true>(M, N, K, A, a_rs, a_cs, B, b_rs, b_cs, C, ldc, accumulate);
    return;
  }
  // Other layouts of B (transposed, or broadcast as the gradient of a sum is) are copied into
  // row-major order once, so that the kernel loads whole vectors instead of gathering a
  // column element by element for every row block (a backward mm has one such operand).
  constexpr int64_t kPackB = 4096;
  if (K * N <= kPackB) {
    alignas(64) T bp[kPackB];
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < N; ++j) bp[k * N + j] = B[k * b_rs + j * b_cs];
    small_gemm_impl<T, true>(M, N, K, A, a_rs, a_cs, bp, N, 1, C, ldc, accumulate);
    return;
  }
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
  if (M * N * K <= kSmallGemm) {
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
