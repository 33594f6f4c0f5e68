// The CPU backend's elementwise kernels (mirrors cuda/elementwise.cu): copies and conversions,
// binary and scalar arithmetic, the unary ops of src/ops/unary_ops.h, comparisons, where,
// fill, clamp, dReLU. Every kernel runs through cpu::kernel (loops.h): flat loops over
// contiguous operands, coalesced strided loops otherwise, OpenMP above 32 K elements.
#include <cmath>
#include <cstring>
#include <limits>

#include "core/dispatch.h"
#include "cpu/backend.h"
#include "cpu/loops.h"
#include "ops/scalar_math.h"

namespace nnkit::detail {

namespace {

// out = a (op) b computed in T; out, a, b all of dtype T.
template <typename T>
void binary_kernel(const Tensor& out, const Tensor& a, const Tensor& b, Bin op, double alpha_d) {
  T alpha = static_cast<T>(alpha_d);
  switch (op) {
    case Bin::Add:
      if (alpha_d == 1)
        cpu::kernel<T, T, T>(out, {&a, &b}, [](T x, T y) { return T(x + y); });
      else
        cpu::kernel<T, T, T>(out, {&a, &b}, [alpha](T x, T y) { return T(x + alpha * y); });
      break;
    case Bin::Sub:
      if (alpha_d == 1)
        cpu::kernel<T, T, T>(out, {&a, &b}, [](T x, T y) { return T(x - y); });
      else
        cpu::kernel<T, T, T>(out, {&a, &b}, [alpha](T x, T y) { return T(x - alpha * y); });
      break;
    case Bin::Mul: cpu::kernel<T, T, T>(out, {&a, &b}, [](T x, T y) { return T(x * y); }); break;
    case Bin::Div:
      if constexpr (std::is_integral_v<T>) {
        cpu::kernel<T, T, T>(out, {&a, &b}, [](T x, T y) {
          NNKIT_CHECK(y != 0, "[div] integer division by zero");
          return T(x / y);
        });
      } else {
        cpu::kernel<T, T, T>(out, {&a, &b}, [](T x, T y) { return T(x / y); });
      }
      break;
    case Bin::Pow: cpu::kernel<T, T, T>(out, {&a, &b}, [](T x, T y) { return pow_value(x, y); }); break;
    case Bin::Max: cpu::kernel<T, T, T>(out, {&a, &b}, [](T x, T y) { return max_value(x, y); }); break;
    case Bin::Min: cpu::kernel<T, T, T>(out, {&a, &b}, [](T x, T y) { return min_value(x, y); }); break;
  }
}

template <typename T>
void scalar_kernel(const Tensor& out, const Tensor& a, ScalarOp op, double s) {
  T v = static_cast<T>(s);
  switch (op) {
    case ScalarOp::Add: cpu::kernel<T, T>(out, {&a}, [v](T x) { return T(x + v); }); break;
    case ScalarOp::Mul: cpu::kernel<T, T>(out, {&a}, [v](T x) { return T(x * v); }); break;
    case ScalarOp::Div: cpu::kernel<T, T>(out, {&a}, [v](T x) { return T(x / v); }); break;
    case ScalarOp::RDiv: cpu::kernel<T, T>(out, {&a}, [v](T x) { return T(v / x); }); break;
    case ScalarOp::Pow:
      if (s == 2)
        cpu::kernel<T, T>(out, {&a}, [](T x) { return T(x * x); });
      else if (s == 0.5 && std::is_floating_point_v<T>)
        cpu::kernel<T, T>(out, {&a}, [](T x) { return T(std::sqrt(x)); });
      else
        cpu::kernel<T, T>(out, {&a}, [v](T x) { return pow_value(x, v); });
      break;
  }
}

// One loop per row of NNKIT_UNARY_OPS (the CUDA kernels come from the same rows).
template <typename T>
void unary_kernel(const Tensor& out, const Tensor& x, Un op) {
  switch (op) {
#define NNKIT_UN_KERNEL_(E, fn, api, node, dt, sv, value, grad)                 \
  case Un::E:                                                                  \
    if constexpr (UnDtypes::dt == UnDtypes::Any || std::is_floating_point_v<T>) \
      cpu::kernel<T, T>(out, {&x}, [](T v) { return T(value); });              \
    break;
    NNKIT_UNARY_OPS(NNKIT_UN_KERNEL_)
#undef NNKIT_UN_KERNEL_
  }
}

}  // namespace

void CpuBackend::copy(const Tensor& dst, const Tensor& src) const {
  if (dst.numel() == 0) return;
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous() && dst.sizes() == src.sizes()) {
    std::memcpy(dst.raw_data(), src.raw_data(), dst.nbytes());
    return;
  }
  dispatch<kAllTypes>(dst.dtype(), "copy_", [&]<typename D>() {
    dispatch<kAllTypes>(src.dtype(), "copy_", [&]<typename S>() {
      cpu::kernel<D, S>(dst, {&src}, [](S v) { return static_cast<D>(v); });
    });
  });
}

void CpuBackend::binary(const Tensor& out, const Tensor& a, const Tensor& b, Bin op, double alpha) const {
  // (The front end rejects dtypes outside the set with the op's own name first.)
  dispatch<kNumericTypes>(out.dtype(), "binary", [&]<typename T>() { binary_kernel<T>(out, a, b, op, alpha); });
}

void CpuBackend::scalar(const Tensor& out, const Tensor& a, ScalarOp op, double s) const {
  dispatch<kNumericTypes>(out.dtype(), "scalar", [&]<typename T>() { scalar_kernel<T>(out, a, op, s); });
}

void CpuBackend::unary(const Tensor& out, const Tensor& x, Un op) const {
  dispatch<kNumericTypes>(out.dtype(), "unary", [&]<typename T>() { unary_kernel<T>(out, x, op); });
}

void CpuBackend::compare(const Tensor& out, const Tensor& a, const Tensor& b, Cmp op) const {
  dispatch<kAllTypes>(a.dtype(), "compare", [&]<typename T>() {
    switch (op) {
      case Cmp::Eq: cpu::kernel<bool, T, T>(out, {&a, &b}, [](T x, T y) { return x == y; }); break;
      case Cmp::Ne: cpu::kernel<bool, T, T>(out, {&a, &b}, [](T x, T y) { return x != y; }); break;
      case Cmp::Lt: cpu::kernel<bool, T, T>(out, {&a, &b}, [](T x, T y) { return x < y; }); break;
      case Cmp::Le: cpu::kernel<bool, T, T>(out, {&a, &b}, [](T x, T y) { return x <= y; }); break;
      case Cmp::Gt: cpu::kernel<bool, T, T>(out, {&a, &b}, [](T x, T y) { return x > y; }); break;
      case Cmp::Ge: cpu::kernel<bool, T, T>(out, {&a, &b}, [](T x, T y) { return x >= y; }); break;
    }
  });
}

void CpuBackend::where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) const {
  dispatch<kAllTypes>(out.dtype(), "where", [&]<typename T>() {
    cpu::kernel<T, bool, T, T>(out, {&cond, &a, &b}, [](bool c, T x, T y) { return c ? x : y; });
  });
}

void CpuBackend::fill(const Tensor& out, double value) const {
  dispatch<kAllTypes>(out.dtype(), "fill_", [&]<typename T>() {
    cpu::kernel<T>(out, {}, [v = static_cast<T>(value)]() { return v; });
  });
}

void CpuBackend::clamp(const Tensor& out, const Tensor& x, bool has_lo, double lo, bool has_hi, double hi) const {
  dispatch<kNumericTypes>(out.dtype(), "clamp", [&]<typename T>() {
    T l = has_lo ? static_cast<T>(lo) : std::numeric_limits<T>::lowest();
    T h = has_hi ? static_cast<T>(hi) : std::numeric_limits<T>::max();
    cpu::kernel<T, T>(out, {&x}, [l, h](T v) { return v != v ? v : std::min(std::max(v, l), h); });
  });
}

void CpuBackend::relu_backward(const Tensor& out, const Tensor& y, const Tensor& g) const {
  dispatch<kNumericTypes>(g.dtype(), "relu_backward", [&]<typename T>() {
    cpu::kernel<T, T, T>(out, {&y, &g}, [](T yv, T v) { return yv > T(0) ? v : T(0); });
  });
}

}  // namespace nnkit::detail
