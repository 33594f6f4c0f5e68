#pragma once
#include <cstdint>
#include <iosfwd>
#include <string_view>

namespace nnkit {

// The element types a tensor can hold. Promotion order: Bool < Int64 < Float32 < Float64.
enum class Dtype : uint8_t { Bool = 0, Int64 = 1, Float32 = 2, Float64 = 3 };

inline constexpr Dtype kBool = Dtype::Bool;
inline constexpr Dtype kInt64 = Dtype::Int64;
inline constexpr Dtype kFloat32 = Dtype::Float32;
inline constexpr Dtype kFloat64 = Dtype::Float64;
inline constexpr Dtype kFloat = Dtype::Float32;
inline constexpr Dtype kDouble = Dtype::Float64;
inline constexpr Dtype kLong = Dtype::Int64;

constexpr size_t element_size(Dtype d) {
  switch (d) {
    case Dtype::Bool: return 1;
    case Dtype::Int64: return 8;
    case Dtype::Float32: return 4;
    case Dtype::Float64: return 8;
  }
  return 0;
}
constexpr bool is_floating_point(Dtype d) { return d == Dtype::Float32 || d == Dtype::Float64; }
constexpr bool is_integral(Dtype d, bool include_bool = false) {
  return d == Dtype::Int64 || (include_bool && d == Dtype::Bool);
}
// PyTorch's names: "float32", "float64", "int64", "bool".
std::string_view dtype_name(Dtype d);
std::ostream& operator<<(std::ostream& os, Dtype d);

// Type promotion between two tensors (PyTorch's result_type for same-category operands).
constexpr Dtype promote_types(Dtype a, Dtype b) { return static_cast<uint8_t>(a) >= static_cast<uint8_t>(b) ? a : b; }

template <typename T> struct DtypeOf;
template <> struct DtypeOf<bool> { static constexpr Dtype value = Dtype::Bool; };
template <> struct DtypeOf<int64_t> { static constexpr Dtype value = Dtype::Int64; };
template <> struct DtypeOf<float> { static constexpr Dtype value = Dtype::Float32; };
template <> struct DtypeOf<double> { static constexpr Dtype value = Dtype::Float64; };
template <typename T> inline constexpr Dtype dtype_of = DtypeOf<T>::value;

}  // namespace nnkit
