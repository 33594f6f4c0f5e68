// GEMM through Eigen's blocked, vectorized product (OpenMP-parallel for large products).
#include <Eigen/Core>

#include "cpu/kernels.h"

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
}  // namespace

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_rs, int64_t a_cs, const T* B, int64_t b_rs,
          int64_t b_cs, T* C, int64_t ldc, bool accumulate) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate) MapOut<T>(C, M, N, Eigen::OuterStride<>(ldc)).setZero();
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
