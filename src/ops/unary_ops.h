#pragma once
// The unary ops, one row each: everything about an op is in its row. Read by the op front end
// (src/ops/elementwise.cpp: the functions, Tensor members, autograd nodes) and by both
// backends' kernels (src/cpu/elementwise.cpp, cuda/elementwise.cu), so a new unary op is its
// row here, its declaration in include/nnkit/ops.h (and Tensor member in core/tensor.h), and a
// test.
//
// X(Enum, function, api, grad_fn name, dtypes, saves, value, gradient)
//   function  the op's name (in errors), and the public nnkit::function(x) and
//             Tensor::function()
//   api       Public: the front end defines those two; Hand: they are written by hand (gelu,
//             whose two forms share one function with an `approximate` argument)
//   dtypes    Any: every numeric dtype, integers computed as integers; Float: integer inputs are
//             computed in float32 (PyTorch's rule for exp, log, ...)
//   saves     what the gradient reads: None, Input, Output, or Both
//   value     the result for `v` (of the kernel's type T), on the host and on the device; math
//             through nnkit::smath
//   gradient  dL/dx from the incoming gradient g and the saved x and out (tensor ops, so double
//             backward works); compiled on the host only
#include "ops/scalar_math.h"

// clang-format off
#define NNKIT_UNARY_OPS(X)                                                                                        \
  X(Neg, neg, Public, "NegBackward0", Any, None, T(-v), -g)                                                                 \
  X(Abs, abs, Public, "AbsBackward0", Any, Input, (v < T(0) ? T(-v) : v), g * x.sign())                                         \
  X(Exp, exp, Public, "ExpBackward0", Float, Output, smath::exp(v), g * out)                                                   \
  X(Log, log, Public, "LogBackward0", Float, Input, smath::log(v), g / x)                                                       \
  X(Log2, log2, Public, "Log2Backward0", Float, Input, smath::log2(v), g / (x * 0.69314718055994530942))             \
  X(Log10, log10, Public, "Log10Backward0", Float, Input, smath::log10(v), g / (x * 2.30258509299404568402))         \
  X(Exp2, exp2, Public, "Exp2Backward0", Float, Output, smath::exp2(v), g * out * 0.69314718055994530942)             \
  X(Tan, tan, Public, "TanBackward0", Float, Output, smath::tan(v), g * (1.0 + out * out))                             \
  X(Log1p, log1p, Public, "Log1PBackward0", Float, Input, smath::log1p(v), g / (x + 1.0))                                       \
  X(Expm1, expm1, Public, "Expm1Backward0", Float, Output, smath::expm1(v), g * (out + 1.0))                                   \
  X(Sqrt, sqrt, Public, "SqrtBackward0", Float, Output, smath::sqrt(v), g / (out * 2.0))                                       \
  X(Rsqrt, rsqrt, Public, "RsqrtBackward0", Float, Output, T(1) / smath::sqrt(v), g * out.pow(3.0) * -0.5)                     \
  X(Sin, sin, Public, "SinBackward0", Float, Input, smath::sin(v), g * x.cos())                                                 \
  X(Cos, cos, Public, "CosBackward0", Float, Input, smath::cos(v), -g * x.sin())                                                \
  X(Tanh, tanh, Public, "TanhBackward0", Float, Output, smath::tanh(v), g * (1.0 - out * out))                                 \
  X(Sigmoid, sigmoid, Public, "SigmoidBackward0", Float, Output, T(1) / (T(1) + smath::exp(-v)), g * out * (1.0 - out))        \
  X(Relu, relu, Public, "ReluBackward0", Any, Output, (v > T(0) ? v : (v != v ? v : T(0))), detail::relu_backward(g, out))     \
  X(Gelu, gelu, Hand, "GeluBackward0", Float, Input, v * T(0.5) * (T(1) + smath::erf(v * T(0.70710678118654752440))),            \
    detail::gelu_backward(g, x))                                                                                    \
  X(GeluTanh, gelu, Hand, "GeluBackward0", Float, Input, detail::gelu_tanh_value(v), detail::gelu_tanh_backward(g, x))           \
  X(Erf, erf, Public, "ErfBackward0", Float, Input, smath::erf(v), g * (x * x * -1.0).exp() * 1.12837916709551257390)          \
  X(Square, square, Public, "PowBackward0", Any, Input, T(v * v), g * x * 2.0)                                                  \
  X(Recip, reciprocal, Public, "ReciprocalBackward0", Float, Output, T(1) / v, -g * out * out)                                 \
  X(Sign, sign, Public, "SignBackward0", Any, None, T((T(0) < v) - (v < T(0))), zeros_like(g))
// clang-format on

namespace nnkit::detail {

// The values of the dtypes and saves columns.
enum class UnDtypes { Any, Float };
enum class UnSaves { None, Input, Output, Both };

#define NNKIT_UNARY_ENUM_(E, ...) E,
enum class Un { NNKIT_UNARY_OPS(NNKIT_UNARY_ENUM_) };
#undef NNKIT_UNARY_ENUM_

// gelu with approximate="tanh": 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))).
template <typename T>
NNKIT_HD inline T gelu_tanh_value(T v) {
  const T kBeta = T(0.7978845608028654);  // sqrt(2/pi)
  const T kKappa = T(0.044715);
  T inner = kBeta * (v + kKappa * v * v * v);
  return T(T(0.5) * v * (T(1) + smath::tanh(inner)));
}

}  // namespace nnkit::detail
