#pragma once
// Private: CPU kernels implemented in their own translation units (Eigen stays here).
#include <cstdint>

namespace nnkit::cpu {

// C[M,N] (row stride ldc) = A[M,K] * B[K,N] (+ C when accumulate). A and B are given by their
// row and column strides in elements; one of each pair must be 1, except for small products
// (M*N*K <= kSmallGemm), which take any strides, 0 included (broadcast operands such as the
// gradient of a sum, with no copy).
inline constexpr int64_t kSmallGemm = 32 * 32 * 32;
template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_rs, int64_t a_cs, const T* B, int64_t b_rs,
          int64_t b_cs, T* C, int64_t ldc, bool accumulate = false);

}  // namespace nnkit::cpu
