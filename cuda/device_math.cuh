#pragma once
// Device math for float and double, spelled with CUDA's C names (expf / exp ...) so that nnkit's
// own tensor functions (nnkit::exp(const Tensor&) ...) never shadow them inside nnkit's
// namespaces.
#include <type_traits>

namespace nnkit_dmath {

#define NNKIT_DMATH_UNARY(name)                                        \
  template <typename T>                                                \
  __device__ __forceinline__ T name(T v) {                             \
    if constexpr (std::is_same_v<T, float>) return ::name##f(v);       \
    else return ::name(v);                                             \
  }
NNKIT_DMATH_UNARY(exp)
NNKIT_DMATH_UNARY(log)
NNKIT_DMATH_UNARY(log1p)
NNKIT_DMATH_UNARY(expm1)
NNKIT_DMATH_UNARY(sqrt)
NNKIT_DMATH_UNARY(sin)
NNKIT_DMATH_UNARY(cos)
NNKIT_DMATH_UNARY(tanh)
NNKIT_DMATH_UNARY(erf)
#undef NNKIT_DMATH_UNARY

template <typename T>
__device__ __forceinline__ T pow(T a, T b) {
  if constexpr (std::is_same_v<T, float>) return ::powf(a, b);
  else return ::pow(a, b);
}

}  // namespace nnkit_dmath
