#pragma once
// Tensor: a cheap handle (one pointer) to a shared TensorImpl. Copying a Tensor shares it;
// views share storage; clone() and contiguous() copy. Every in-place op bumps the version
// counter that autograd checks.
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "nnkit/core/device.h"
#include "nnkit/core/dtype.h"
#include "nnkit/core/error.h"
#include "nnkit/core/handle.h"
#include "nnkit/core/shape.h"
#include "nnkit/core/tensor_impl.h"

namespace nnkit {

namespace autograd {
class Node;
}

class Tensor;
using TensorList = std::vector<Tensor>;

// Options for factories, written with designated initializers:
//   nnkit::zeros({2, 3}, {.dtype = nnkit::kFloat64, .requires_grad = true})
// An unset dtype means the factory's default (float32; int64 for randint and integer arange).
struct TensorOptions {
  // (Default member initializers: GCC 12's -Wextra warns about a designated initializer that
  // leaves out a member without one, as in {.dtype = kFloat64}.)
  std::optional<Dtype> dtype = std::nullopt;
  std::optional<Device> device = std::nullopt;  // factories: the CPU when unset; *_like: the model tensor's
  bool requires_grad = false;
};

// A hook on a tensor's gradient: receives the gradient, returns a replacement or an undefined
// Tensor to keep it.
using TensorHook = std::function<Tensor(const Tensor&)>;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(IntrusivePtr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return static_cast<bool>(impl_); }
  TensorImpl* impl() const { return impl_.get(); }
  const IntrusivePtr<TensorImpl>& impl_ptr() const { return impl_; }
  // True when both handles point at the same tensor (not merely equal values).
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }
  // True when both share one storage (views of each other, or detach()).
  bool is_alias_of(const Tensor& o) const;
  uint32_t use_count() const { return impl_.use_count(); }

  // ---- metadata ----
  const Shape& sizes() const { return checked()->sizes(); }
  const Shape& shape() const { return sizes(); }
  // Negative dims count from the end; an out-of-range dim is an nnkit::Error.
  int64_t size(int64_t dim) const {
    const Shape& s = sizes();
    const int64_t n = static_cast<int64_t>(s.size());
    const int64_t d = dim < 0 ? dim + n : dim;
    if (d >= 0 && d < n) [[likely]] return s[static_cast<size_t>(d)];
    return dim_out_of_range("size", dim);
  }
  const Shape& strides() const { return checked()->strides(); }
  int64_t stride(int64_t dim) const {
    const Shape& s = strides();
    const int64_t n = static_cast<int64_t>(s.size());
    const int64_t d = dim < 0 ? dim + n : dim;
    if (d >= 0 && d < n) [[likely]] return s[static_cast<size_t>(d)];
    return dim_out_of_range("stride", dim);
  }
  int64_t dim() const { return static_cast<int64_t>(sizes().size()); }
  int64_t numel() const { return checked()->numel(); }
  int64_t storage_offset() const { return checked()->offset(); }
  Dtype dtype() const { return checked()->dtype(); }
  Device device() const { return checked()->device(); }
  bool is_cuda() const { return device().is_cuda(); }
  bool is_cpu() const { return device().is_cpu(); }
  bool is_contiguous() const { return checked()->is_contiguous(); }
  bool is_floating_point() const { return nnkit::is_floating_point(dtype()); }
  size_t element_size() const { return nnkit::element_size(dtype()); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * element_size(); }
  // The storage's version counter: bumped by every in-place op on this tensor or its views.
  uint32_t version() const { return checked()->storage()->version(); }

  // Typed pointer to the first element (CPU or CUDA memory). Checks the dtype.
  template <typename T>
  T* data_ptr() const {
    NNKIT_CHECK(dtype() == dtype_of<std::remove_cv_t<T>>, "[data_ptr] tensor has dtype ", dtype(),
                ", requested ", dtype_of<std::remove_cv_t<T>>);
    return static_cast<T*>(impl_->data());
  }
  void* raw_data() const { return checked()->data(); }
  // The value of a one-element tensor, converted to T.
  template <typename T>
  T item() const {
    return static_cast<T>(item_double_or_int<T>());
  }
  // Copies the elements (any layout, any device) into a vector, converted to T.
  template <typename T>
  std::vector<T> to_vector() const;

  // ---- views (share storage) ----
  Tensor view(const Shape& sizes) const;
  Tensor reshape(const Shape& sizes) const;
  Tensor permute(const Shape& dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const;
  Tensor slice(int64_t dim, std::optional<int64_t> start = std::nullopt, std::optional<int64_t> end = std::nullopt,
               int64_t step = 1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor operator[](int64_t index) const { return select(0, index); }
  Tensor expand(const Shape& sizes) const;
  Tensor expand_as(const Tensor& other) const { return expand(other.sizes()); }
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor unflatten(int64_t dim, const Shape& sizes) const;
  Tensor as_strided(const Shape& sizes, const Shape& strides, std::optional<int64_t> offset = std::nullopt) const;

  // ---- copies and conversions ----
  Tensor contiguous() const;
  Tensor clone() const;
  // Shares storage (and the version counter) and drops the autograd graph.
  Tensor detach() const;
  Tensor& detach_();
  Tensor to(Device device) const;
  Tensor to(Dtype dtype) const;
  Tensor to(Device device, Dtype dtype) const;
  Tensor cpu() const { return to(Device::cpu()); }
  Tensor cuda(int index = 0) const { return to(Device::cuda(index)); }

  // ---- in-place (each bumps the version counter) ----
  Tensor& copy_(const Tensor& src);
  Tensor& fill_(double value);
  Tensor& zero_();
  Tensor& add_(const Tensor& other, double alpha = 1);
  Tensor& add_(double other);
  Tensor& sub_(const Tensor& other, double alpha = 1);
  Tensor& sub_(double other);
  Tensor& mul_(const Tensor& other);
  Tensor& mul_(double other);
  Tensor& div_(const Tensor& other);
  Tensor& div_(double other);
  Tensor& clamp_(std::optional<double> min, std::optional<double> max = std::nullopt);
  Tensor& relu_();
  Tensor& operator+=(const Tensor& o) { return add_(o); }
  Tensor& operator+=(double o) { return add_(o); }
  Tensor& operator-=(const Tensor& o) { return sub_(o); }
  Tensor& operator-=(double o) { return sub_(o); }
  Tensor& operator*=(const Tensor& o) { return mul_(o); }
  Tensor& operator*=(double o) { return mul_(o); }
  Tensor& operator/=(const Tensor& o) { return div_(o); }
  Tensor& operator/=(double o) { return div_(o); }

  // ---- arithmetic ----
  Tensor add(const Tensor& other, double alpha = 1) const;
  Tensor add(double other) const;
  Tensor sub(const Tensor& other, double alpha = 1) const;
  Tensor sub(double other) const;
  Tensor mul(const Tensor& other) const;
  Tensor mul(double other) const;
  Tensor div(const Tensor& other) const;
  Tensor div(double other) const;
  Tensor pow(double exponent) const;
  Tensor pow(const Tensor& exponent) const;
  Tensor maximum(const Tensor& other) const;
  Tensor minimum(const Tensor& other) const;
  Tensor neg() const;
  Tensor abs() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor log1p() const;
  Tensor expm1() const;
  Tensor log2() const;
  Tensor log10() const;
  Tensor exp2() const;
  Tensor tan() const;
  Tensor sqrt() const;
  Tensor rsqrt() const;
  Tensor square() const;
  Tensor reciprocal() const;
  Tensor sin() const;
  Tensor cos() const;
  Tensor tanh() const;
  Tensor sigmoid() const;
  Tensor relu() const;
  // approximate: "none" (exact, erf) or "tanh", as in PyTorch.
  Tensor gelu(std::string_view approximate = "none") const;
  Tensor erf() const;
  Tensor sign() const;
  Tensor clamp(std::optional<double> min, std::optional<double> max = std::nullopt) const;

  // ---- comparisons (bool results) ----
  Tensor eq(const Tensor& o) const;
  Tensor eq(double o) const;
  Tensor ne(const Tensor& o) const;
  Tensor ne(double o) const;
  Tensor lt(const Tensor& o) const;
  Tensor lt(double o) const;
  Tensor le(const Tensor& o) const;
  Tensor le(double o) const;
  Tensor gt(const Tensor& o) const;
  Tensor gt(double o) const;
  Tensor ge(const Tensor& o) const;
  Tensor ge(double o) const;
  Tensor logical_not() const;

  // ---- reductions ----
  Tensor sum() const;
  Tensor sum(const Shape& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const Shape& dims, bool keepdim = false) const;
  // correction = 1 is Bessel's correction (PyTorch's default); 0 is the population variance.
  Tensor var(double correction = 1) const;
  Tensor var(const Shape& dims, double correction = 1, bool keepdim = false) const;
  Tensor std(double correction = 1) const;
  Tensor std(const Shape& dims, double correction = 1, bool keepdim = false) const;
  Tensor max() const;
  Tensor min() const;
  std::tuple<Tensor, Tensor> max(int64_t dim, bool keepdim = false) const;  // values, indices
  std::tuple<Tensor, Tensor> min(int64_t dim, bool keepdim = false) const;
  Tensor argmax() const;
  Tensor argmax(int64_t dim, bool keepdim = false) const;
  Tensor argmin() const;
  Tensor argmin(int64_t dim, bool keepdim = false) const;
  Tensor amax(const Shape& dims, bool keepdim = false) const;
  Tensor amin(const Shape& dims, bool keepdim = false) const;

  // ---- linear algebra, softmax ----
  Tensor matmul(const Tensor& other) const;
  Tensor mm(const Tensor& other) const;
  Tensor bmm(const Tensor& other) const;
  Tensor softmax(int64_t dim) const;
  Tensor log_softmax(int64_t dim) const;

  // ---- comparisons of whole tensors ----
  bool equal(const Tensor& other) const;
  bool allclose(const Tensor& other, double rtol = 1e-5, double atol = 1e-8) const;

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& requires_grad_(bool requires_grad = true);
  // The accumulated gradient (undefined until a backward pass reaches this leaf).
  const Tensor& grad() const;
  Tensor& mutable_grad();
  void set_grad(const Tensor& grad);
  // The node that created this tensor (null for leaves and tensors without history).
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  uint32_t output_nr() const;
  bool is_leaf() const;
  void retain_grad();
  bool retains_grad() const;
  // gradient: d(root)/d(this); may be omitted for a one-element tensor.
  void backward(const Tensor& gradient = {}, bool retain_graph = false, bool create_graph = false) const;
  // A hook on the gradient of this tensor. The callable may return a Tensor (a replacement;
  // undefined keeps the gradient) or void.
  template <typename F>
  [[nodiscard]] RemovableHandle register_hook(F&& hook) const {
    if constexpr (std::is_void_v<std::invoke_result_t<F, const Tensor&>>) {
      return register_hook_impl([h = std::forward<F>(hook)](const Tensor& g) {
        h(g);
        return Tensor();
      });
    } else {
      return register_hook_impl(TensorHook(std::forward<F>(hook)));
    }
  }

  std::string to_string() const;

 private:
  TensorImpl* checked() const {
    if (!impl_) [[unlikely]]
      undefined_error();
    return impl_.get();
  }
  [[noreturn]] static void undefined_error();
  [[noreturn]] int64_t dim_out_of_range(const char* op, int64_t dim) const;
  RemovableHandle register_hook_impl(TensorHook hook) const;
  template <typename T>
  auto item_double_or_int() const {
    if constexpr (std::is_integral_v<T>)
      return item_int64();
    else
      return item_double();
  }
  double item_double() const;
  int64_t item_int64() const;

  IntrusivePtr<TensorImpl> impl_;
};

// PyTorch-style repr: tensor([[ 0.1000, -2.0000], ...], requires_grad=True)
std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace nnkit
