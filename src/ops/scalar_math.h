#pragma once
// Private: scalar rules shared by the CPU kernels (src/ops) and the CUDA kernels (cuda/), so
// both devices give the same answers: integer powers, NaN-propagating maximum/minimum.
#include <cmath>
#include <limits>
#include <type_traits>

#ifndef NNKIT_HD
#ifdef __CUDACC__
#define NNKIT_HD __host__ __device__
#else
#define NNKIT_HD
#endif
#endif

namespace nnkit::detail {

template <typename T>
NNKIT_HD inline bool is_nan_value(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return v != v;
  else
    return false;
}

// a ** b; integers by squaring (negative exponents give 0 except for bases 1 and -1).
template <typename T>
NNKIT_HD inline T pow_value(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    if (b < 0) return a == 1 ? 1 : (a == -1 ? ((b % 2) ? -1 : 1) : 0);
    T r = 1;
    while (b) {
      if (b & 1) r *= a;
      a *= a;
      b >>= 1;
    }
    return r;
  } else {
#ifdef __CUDA_ARCH__
    if constexpr (std::is_same_v<T, float>)
      return ::powf(a, b);
    else
      return ::pow(a, b);
#else
    return std::pow(a, b);
#endif
  }
}

// maximum/minimum: NaN if either operand is NaN, as in PyTorch.
template <typename T>
NNKIT_HD inline T max_value(T a, T b) {
  if (is_nan_value(a) || is_nan_value(b)) return std::numeric_limits<T>::quiet_NaN();
  return a > b ? a : b;
}
template <typename T>
NNKIT_HD inline T min_value(T a, T b) {
  if (is_nan_value(a) || is_nan_value(b)) return std::numeric_limits<T>::quiet_NaN();
  return a < b ? a : b;
}

}  // namespace nnkit::detail

// Math on float and double for kernels of both devices: std:: on the host, CUDA's C functions
// (expf / exp, ...) on the device. Qualified calls (smath::exp) never meet nnkit's own tensor
// functions (nnkit::exp(const Tensor&)).
namespace nnkit::smath {
#ifdef __CUDA_ARCH__
#define NNKIT_SMATH_UNARY(name)                                    \
  template <typename T>                                            \
  __device__ inline T name(T v) {                                  \
    if constexpr (std::is_same_v<T, float>) return ::name##f(v);   \
    else return ::name(v);                                         \
  }
#else
#define NNKIT_SMATH_UNARY(name) \
  template <typename T>         \
  inline T name(T v) { return std::name(v); }
#endif
NNKIT_SMATH_UNARY(exp)
NNKIT_SMATH_UNARY(log)
NNKIT_SMATH_UNARY(log1p)
NNKIT_SMATH_UNARY(expm1)
NNKIT_SMATH_UNARY(sqrt)
NNKIT_SMATH_UNARY(sin)
NNKIT_SMATH_UNARY(cos)
NNKIT_SMATH_UNARY(tanh)
NNKIT_SMATH_UNARY(erf)
NNKIT_SMATH_UNARY(erfc)
NNKIT_SMATH_UNARY(exp2)
NNKIT_SMATH_UNARY(log2)
NNKIT_SMATH_UNARY(log10)
NNKIT_SMATH_UNARY(tan)
NNKIT_SMATH_UNARY(asin)
NNKIT_SMATH_UNARY(acos)
NNKIT_SMATH_UNARY(atan)
NNKIT_SMATH_UNARY(sinh)
NNKIT_SMATH_UNARY(cosh)
NNKIT_SMATH_UNARY(asinh)
NNKIT_SMATH_UNARY(acosh)
NNKIT_SMATH_UNARY(atanh)
NNKIT_SMATH_UNARY(floor)
NNKIT_SMATH_UNARY(ceil)
NNKIT_SMATH_UNARY(trunc)
NNKIT_SMATH_UNARY(nearbyint)
NNKIT_SMATH_UNARY(lgamma)
#undef NNKIT_SMATH_UNARY
}  // namespace nnkit::smath
