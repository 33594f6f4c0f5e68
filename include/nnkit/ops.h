#pragma once
// Every op's front-end declaration. Ops check shapes, dtypes and devices, broadcast, promote
// types, dispatch to a kernel for the tensor's device and record the autograd node.
#include <optional>
#include <string_view>
#include <vector>

#include "nnkit/core/tensor.h"

namespace nnkit {

// ---- factories ----
Tensor empty(const Shape& sizes, const TensorOptions& options = {});
Tensor zeros(const Shape& sizes, const TensorOptions& options = {});
Tensor ones(const Shape& sizes, const TensorOptions& options = {});
Tensor full(const Shape& sizes, double value, const TensorOptions& options = {});
// Integer arguments give int64 (as in PyTorch) unless options.dtype says otherwise.
Tensor arange(int64_t end, const TensorOptions& options = {});
Tensor arange(int64_t start, int64_t end, int64_t step = 1, const TensorOptions& options = {});
Tensor arange(double start, double end, double step = 1, const TensorOptions& options = {});
Tensor linspace(double start, double end, int64_t steps, const TensorOptions& options = {});
Tensor eye(int64_t n, std::optional<int64_t> m = std::nullopt, const TensorOptions& options = {});
// Random factories draw from the global generator (see manual_seed).
Tensor rand(const Shape& sizes, const TensorOptions& options = {});
Tensor randn(const Shape& sizes, const TensorOptions& options = {});
Tensor randint(int64_t low, int64_t high, const Shape& sizes, const TensorOptions& options = {});
Tensor randint(int64_t high, const Shape& sizes, const TensorOptions& options = {});
Tensor empty_like(const Tensor& t, const TensorOptions& options = {});
Tensor zeros_like(const Tensor& t, const TensorOptions& options = {});
Tensor ones_like(const Tensor& t, const TensorOptions& options = {});
Tensor full_like(const Tensor& t, double value, const TensorOptions& options = {});
Tensor rand_like(const Tensor& t, const TensorOptions& options = {});
Tensor randn_like(const Tensor& t, const TensorOptions& options = {});
// A 0-dim tensor holding one value.
Tensor scalar_tensor(double value, const TensorOptions& options = {});
// Wraps memory the caller owns (not copied; must outlive the tensor). Strides default to
// contiguous.
Tensor from_blob(void* data, const Shape& sizes, Dtype dtype, std::optional<Shape> strides = std::nullopt,
                 Device device = Device::cpu());
// Copies values into a new CPU tensor; `sizes` defaults to {values.size()}.
template <typename T>
Tensor from_vector(const std::vector<T>& values, std::optional<Shape> sizes = std::nullopt,
                   const TensorOptions& options = {});
template <typename T>
Tensor tensor(std::initializer_list<T> values, const TensorOptions& options = {}) {
  return from_vector(std::vector<T>(values), std::nullopt, options);
}

// ---- elementwise (broadcasting, type promotion) ----
Tensor add(const Tensor& a, const Tensor& b, double alpha = 1);
Tensor sub(const Tensor& a, const Tensor& b, double alpha = 1);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, double exponent);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// ---- indexing (int64 indices; negative ones count from the end) ----
// out = x with dimension `dim` taken at `index` (1-D): PyTorch's index_select.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// base with source's slices added at `index` along `dim` (out of place).
Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& source);
// out[i][j] = x[i][index[i][j]] (dim = 1), for any rank: PyTorch's gather.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// base with source added at the gathered positions (out of place): PyTorch's scatter_add.
Tensor scatter_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& source);
// Reverses the order of elements along `dims` (a copy).
Tensor flip(const Tensor& x, const Shape& dims);
// torch.nn.functional.pad: pads = (last_before, last_after, 2nd_last_before, ...); modes
// "constant" (negative pads crop), "reflect", "replicate", "circular".
Tensor pad(const Tensor& x, const Shape& pads, std::string_view mode = "constant", double value = 0);

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& condition, const Tensor& a, double b);
Tensor where(const Tensor& condition, double a, const Tensor& b);
Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max = std::nullopt);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);

Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);  // log(1 + x), accurate near 0
Tensor expm1(const Tensor& x);  // exp(x) - 1, accurate near 0
Tensor log2(const Tensor& x);
Tensor log10(const Tensor& x);
Tensor exp2(const Tensor& x);
Tensor tan(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x, std::string_view approximate = "none");
Tensor erf(const Tensor& x);
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor sign(const Tensor& x);

// ---- reductions ----
Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor var(const Tensor& x, const Shape& dims, double correction = 1, bool keepdim = false);
Tensor std(const Tensor& x, const Shape& dims, double correction = 1, bool keepdim = false);
Tensor amax(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor amin(const Tensor& x, const Shape& dims, bool keepdim = false);
// Reduces `x` by summation to `sizes` (the inverse of broadcasting; used by gradients).
Tensor sum_to(const Tensor& x, const Shape& sizes);

// ---- linear algebra, joins, softmax ----
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor mm(const Tensor& a, const Tensor& b);
Tensor bmm(const Tensor& a, const Tensor& b);
Tensor cat(const TensorList& tensors, int64_t dim = 0);
Tensor stack(const TensorList& tensors, int64_t dim = 0);
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

bool equal(const Tensor& a, const Tensor& b);
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);
// Broadcast shape of two shapes, or an error naming `op`.
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op = "broadcast");

// ---- operators ----
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, double b) { return a.add(b); }
inline Tensor operator-(const Tensor& a, double b) { return a.sub(b); }
inline Tensor operator*(const Tensor& a, double b) { return a.mul(b); }
inline Tensor operator/(const Tensor& a, double b) { return a.div(b); }
inline Tensor operator+(double a, const Tensor& b) { return b.add(a); }
inline Tensor operator-(double a, const Tensor& b) { return b.neg().add(a); }
inline Tensor operator*(double a, const Tensor& b) { return b.mul(a); }
Tensor operator/(double a, const Tensor& b);
inline Tensor operator-(const Tensor& a) { return a.neg(); }
inline Tensor operator==(const Tensor& a, const Tensor& b) { return a.eq(b); }
inline Tensor operator!=(const Tensor& a, const Tensor& b) { return a.ne(b); }
inline Tensor operator<(const Tensor& a, const Tensor& b) { return a.lt(b); }
inline Tensor operator<=(const Tensor& a, const Tensor& b) { return a.le(b); }
inline Tensor operator>(const Tensor& a, const Tensor& b) { return a.gt(b); }
inline Tensor operator>=(const Tensor& a, const Tensor& b) { return a.ge(b); }
inline Tensor operator==(const Tensor& a, double b) { return a.eq(b); }
inline Tensor operator!=(const Tensor& a, double b) { return a.ne(b); }
inline Tensor operator<(const Tensor& a, double b) { return a.lt(b); }
inline Tensor operator<=(const Tensor& a, double b) { return a.le(b); }
inline Tensor operator>(const Tensor& a, double b) { return a.gt(b); }
inline Tensor operator>=(const Tensor& a, double b) { return a.ge(b); }

// ---- random state ----
// Seeds the global generator: the same seed gives the same numbers on every run.
void manual_seed(uint64_t seed);

}  // namespace nnkit
