#pragma once
// Private helpers shared by the op front ends.
#include <string_view>

#include "core/dispatch.h"
#include "nnkit/core/error.h"
#include "nnkit/core/tensor.h"
#include "nnkit/ops.h"

namespace nnkit::detail {

// `t` when it already has dtype `d`, else its conversion, kept alive in `holder`. Kernels take
// their operands this way instead of by a Tensor copy: every handle copy is two atomic
// updates, a noticeable part of a tiny op.
inline const Tensor& as_dtype(const Tensor& t, Dtype d, Tensor& holder) {
  if (t.dtype() == d) return t;
  holder = t.detach().to(d);
  return holder;
}

// Wraps a possibly negative dimension index into [0, ndim).
inline int64_t wrap_dim(int64_t dim, int64_t ndim, std::string_view op) {
  int64_t n = ndim == 0 ? 1 : ndim;  // a 0-dim tensor accepts dim 0 and -1, as in PyTorch
  NNKIT_CHECK(dim >= -n && dim < n, "[", op, "] dimension out of range (expected to be in range of [", -n, ", ",
              n - 1, "], but got ", dim, ")");
  return dim < 0 ? dim + n : dim;
}

// New contiguous tensor (no autograd).
inline Tensor empty_contig(const Shape& sizes, Dtype dtype, Device device) {
  return empty(sizes, {.dtype = dtype, .device = device});
}

inline void check_defined(const Tensor& t, std::string_view op, std::string_view what = "input") {
  NNKIT_CHECK(t.defined(), "[", op, "] ", what, " is an undefined tensor");
}

inline void check_cpu(const Tensor& t, std::string_view op) {
  NNKIT_CHECK(t.is_cpu(), "[", op, "] no CUDA kernel for this op in this build (tensor on ", t.device(), ")");
}

inline void check_same_device(const Tensor& a, const Tensor& b, std::string_view op) {
  NNKIT_CHECK(a.device() == b.device(), "[", op, "] expected all tensors on the same device, but found ", a.device(),
              " and ", b.device());
}

// Result dtype of a tensor-scalar op: the tensor's dtype, or float32 when an integer/bool
// tensor meets a non-integral scalar (PyTorch's rule for wrapped numbers).
inline Dtype scalar_result_type(Dtype t, double s) {
  if (is_floating_point(t)) return t;
  if (s != static_cast<double>(static_cast<int64_t>(s))) return Dtype::Float32;
  return t == Dtype::Bool ? Dtype::Int64 : t;
}

// Dims list normalized and checked for duplicates; empty means "all dims".
Shape normalize_dims(const Shape& dims, int64_t ndim, std::string_view op);

// Copies src into dst elementwise (shapes broadcastable to dst; any dtypes; CPU).
void copy_kernel(const Tensor& dst, const Tensor& src);

}  // namespace nnkit::detail
