#pragma once
// The element types a tensor can hold: ONE table (NNKIT_FORALL_DTYPES) from which the enum,
// sizes, names, file-format names, type promotion and every kernel dispatcher are derived.
// Adding a dtype is adding its row here (plus, for a type without a C++ builtin, its C++ type
// and the kernels' accumulation types); nothing else enumerates dtypes.
#include <cstdint>
#include <iosfwd>
#include <string_view>

namespace nnkit {

// The kinds of element type PyTorch's promotion distinguishes.
enum class DtypeCategory : uint8_t { Bool, Unsigned, Signed, Floating };

// One row per dtype, in enum order:
//   X(Enum, C++ type, accumulation type, size in bytes, category,
//     PyTorch name, safetensors name, torch.save storage class)
// The accumulation type is what reductions and norms sum in (PyTorch's opmath: float for the
// half types; nnkit sums float32 in double).
#define NNKIT_FORALL_DTYPES(X)                                                              \
  X(Bool, bool, int64_t, 1, Bool, "bool", "BOOL", "BoolStorage")                            \
  X(Int64, int64_t, int64_t, 8, Signed, "int64", "I64", "LongStorage")                      \
  X(Float32, float, double, 4, Floating, "float32", "F32", "FloatStorage")                  \
  X(Float64, double, double, 8, Floating, "float64", "F64", "DoubleStorage")

#define NNKIT_DTYPE_ENUM_(E, ...) E,
enum class Dtype : uint8_t { NNKIT_FORALL_DTYPES(NNKIT_DTYPE_ENUM_) };
#undef NNKIT_DTYPE_ENUM_

#define NNKIT_DTYPE_COUNT_(...) +1
inline constexpr int kNumDtypes = 0 NNKIT_FORALL_DTYPES(NNKIT_DTYPE_COUNT_);
#undef NNKIT_DTYPE_COUNT_

inline constexpr Dtype kBool = Dtype::Bool;
inline constexpr Dtype kInt64 = Dtype::Int64;
inline constexpr Dtype kFloat32 = Dtype::Float32;
inline constexpr Dtype kFloat64 = Dtype::Float64;
inline constexpr Dtype kFloat = Dtype::Float32;
inline constexpr Dtype kDouble = Dtype::Float64;
inline constexpr Dtype kLong = Dtype::Int64;

// A row of the table, readable at compile time.
struct DtypeInfo {
  Dtype dtype;
  uint8_t size;
  DtypeCategory category;
  std::string_view name;         // PyTorch's: "float32", "int64", ...
  std::string_view safetensors;  // "F32", "I64", ...
  std::string_view storage;      // torch.save's storage class: "FloatStorage", ...
};

#define NNKIT_DTYPE_INFO_(E, T, A, size, cat, name, st, storage) \
  DtypeInfo{Dtype::E, size, DtypeCategory::cat, name, st, storage},
inline constexpr DtypeInfo kDtypeTable[] = {NNKIT_FORALL_DTYPES(NNKIT_DTYPE_INFO_)};
#undef NNKIT_DTYPE_INFO_

constexpr const DtypeInfo& dtype_info(Dtype d) { return kDtypeTable[static_cast<int>(d)]; }
constexpr size_t element_size(Dtype d) { return dtype_info(d).size; }
constexpr DtypeCategory dtype_category(Dtype d) { return dtype_info(d).category; }
constexpr bool is_floating_point(Dtype d) { return dtype_category(d) == DtypeCategory::Floating; }
constexpr bool is_integral(Dtype d, bool include_bool = false) {
  DtypeCategory c = dtype_category(d);
  return c == DtypeCategory::Signed || c == DtypeCategory::Unsigned || (include_bool && c == DtypeCategory::Bool);
}
constexpr bool is_signed(Dtype d) {
  return dtype_category(d) == DtypeCategory::Signed || dtype_category(d) == DtypeCategory::Floating;
}
// PyTorch's names: "float32", "float64", "int64", "bool".
constexpr std::string_view dtype_name(Dtype d) { return dtype_info(d).name; }
std::ostream& operator<<(std::ostream& os, Dtype d);

namespace detail {
// The dtype of a category and size, if the table has one.
constexpr bool find_dtype(DtypeCategory c, size_t size, Dtype& out) {
  for (const DtypeInfo& r : kDtypeTable)
    if (r.category == c && r.size == size) {
      out = r.dtype;
      return true;
    }
  return false;
}
}  // namespace detail

// PyTorch's promote_types (c10/core/ScalarType.h's promotion lattice), derived from the rows:
// bool < integers < floating point; two integers of one signedness give the wider; an unsigned
// and a signed integer give the signed one when it is wider, else the signed type of twice the
// unsigned one's size (uint8 + int8 -> int16); two floating types of one size but different
// formats (float16 + bfloat16) give float32.
constexpr Dtype promote_types(Dtype a, Dtype b) {
  if (a == b) return a;
  const DtypeInfo &ra = dtype_info(a), &rb = dtype_info(b);
  if (ra.category == DtypeCategory::Bool) return b;
  if (rb.category == DtypeCategory::Bool) return a;
  bool fa = ra.category == DtypeCategory::Floating, fb = rb.category == DtypeCategory::Floating;
  if (fa != fb) return fa ? a : b;
  if (fa) {
    if (ra.size != rb.size) return ra.size > rb.size ? a : b;
    Dtype out = Dtype::Float32;
    detail::find_dtype(DtypeCategory::Floating, 2 * ra.size, out);
    return out;
  }
  if (ra.category == rb.category) return ra.size >= rb.size ? a : b;
  const DtypeInfo& u = ra.category == DtypeCategory::Unsigned ? ra : rb;
  const DtypeInfo& s = ra.category == DtypeCategory::Unsigned ? rb : ra;
  if (s.size > u.size) return s.dtype;
  Dtype out = s.dtype;
  detail::find_dtype(DtypeCategory::Signed, 2 * u.size, out);
  return out;
}

// C++ type <-> dtype.
template <typename T> struct DtypeOf;
template <Dtype D> struct CppTypeOf;
#define NNKIT_DTYPE_TRAITS_(E, T, A, ...)                                               \
  template <> struct DtypeOf<T> { static constexpr Dtype value = Dtype::E; };           \
  template <> struct CppTypeOf<Dtype::E> { using type = T; using acc_type = A; };
NNKIT_FORALL_DTYPES(NNKIT_DTYPE_TRAITS_)
#undef NNKIT_DTYPE_TRAITS_
template <typename T> inline constexpr Dtype dtype_of = DtypeOf<T>::value;
template <Dtype D> using cpp_type = typename CppTypeOf<D>::type;
// The type kernels accumulate T in (sums, means, norms).
template <typename T> using acc_type = typename CppTypeOf<dtype_of<T>>::acc_type;

}  // namespace nnkit
