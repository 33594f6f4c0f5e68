#pragma once
// The one dtype dispatcher, read from the dtype table (include/nnkit/core/dtype.h). Host code of
// both backends uses it (CPU kernels and the host side of cuda/*.cu): the callback is a template
// lambda, `dispatch<kFloatingTypes>(d, "op", [&]<typename T>() { kernel<T>(...); })`; on CUDA
// the callback calls a named function template, where the device lambdas live (nvcc does not
// allow an extended lambda inside a generic lambda).
#include <cstdint>
#include <string>
#include <string_view>

#include "nnkit/core/dtype.h"
#include "nnkit/core/error.h"

namespace nnkit::detail {

// A set of dtypes: one bit per row of the table.
using DtypeSet = uint64_t;
constexpr DtypeSet dtype_bit(Dtype d) { return DtypeSet(1) << static_cast<int>(d); }
constexpr DtypeSet dtypes_of(bool (*pred)(Dtype)) {
  DtypeSet s = 0;
  for (const DtypeInfo& r : kDtypeTable)
    if (pred(r.dtype)) s |= dtype_bit(r.dtype);
  return s;
}
inline constexpr DtypeSet kAllTypes = dtypes_of([](Dtype) { return true; });
inline constexpr DtypeSet kFloatingTypes = dtypes_of([](Dtype d) { return is_floating_point(d); });
inline constexpr DtypeSet kIntegralTypes = dtypes_of([](Dtype d) { return is_integral(d); });
// Everything arithmetic is defined on: all but bool.
inline constexpr DtypeSet kNumericTypes = kAllTypes & ~dtype_bit(Dtype::Bool);

// "float32 or float64" for the dtypes of a set.
std::string dtype_set_names(DtypeSet set);
// The error for a dtype outside an op's set: "[op] not implemented for bool tensors; ..." or
// "[op] expects a floating-point tensor (float32 or float64), got int64".
[[noreturn]] void throw_unsupported_dtype(std::string_view op, Dtype d, DtypeSet set);

// Calls f.template operator()<T>() with T the C++ type of `d`, for d in Set; throws the op's
// error otherwise. Only the set's types are instantiated.
template <DtypeSet Set, typename F>
decltype(auto) dispatch(Dtype d, std::string_view op, F&& f) {
  switch (d) {
#define NNKIT_DISPATCH_CASE_(E, T, ...)                            \
  case Dtype::E:                                                   \
    if constexpr ((Set & dtype_bit(Dtype::E)) != 0) return f.template operator()<T>(); \
    break;
    NNKIT_FORALL_DTYPES(NNKIT_DISPATCH_CASE_)
#undef NNKIT_DISPATCH_CASE_
  }
  throw_unsupported_dtype(op, d, Set);
}

// Pure copies (index_select, gather, ...) move bits: one unsigned type per element size.
template <typename F>
decltype(auto) dispatch_bits(Dtype d, F&& f) {
  switch (element_size(d)) {
    case 1: return f.template operator()<uint8_t>();
    case 2: return f.template operator()<uint16_t>();
    case 4: return f.template operator()<uint32_t>();
    default: break;
  }
  return f.template operator()<uint64_t>();
}

}  // namespace nnkit::detail
