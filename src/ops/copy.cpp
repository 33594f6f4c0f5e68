// Copies and conversions: copy_, contiguous, clone, to(dtype/device), fill_, zero_.
#include <cstring>

#include "autograd/function.h"
#include "ops/common.h"
#include "backend/backend.h"

namespace nnkit {

using autograd::make_node;
using autograd::needs_grad;
using autograd::set_history;

namespace detail {

void copy_kernel(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  copy_backend(dst, src).copy(dst, src);
}

}  // namespace detail

Tensor& Tensor::copy_(const Tensor& src) {
  detail::check_defined(*this, "copy_", "destination");
  detail::check_defined(src, "copy_", "source");
  Shape b = broadcast_shapes(sizes(), src.sizes(), "copy_");
  NNKIT_CHECK(b == sizes(), "[copy_] source of shape ", src.sizes(), " cannot be broadcast to destination shape ",
              sizes());
  autograd::check_inplace(*this, "copy_");
  detail::copy_kernel(*this, src);
  impl()->storage()->bump_version();
  if (needs_grad(*this, src)) {
    Shape src_sizes = src.sizes();
    Dtype src_dtype = src.dtype();
    Device src_device = src.device();
    auto node = make_node("CopyBackwards", {this, &src},
                          [src_sizes, src_dtype, src_device](autograd::Node&, TensorList&& g) {
                            return TensorList{Tensor(), sum_to(g[0], src_sizes).to(src_device, src_dtype)};
                          });
    autograd::rebase_history(*this, node);
  }
  return *this;
}

Tensor Tensor::clone() const {
  detail::check_defined(*this, "clone");
  Tensor out = detail::empty_contig(sizes(), dtype(), device());
  detail::copy_kernel(out, *this);
  if (needs_grad(*this)) {
    auto node = make_node("CloneBackward0", {this}, [](autograd::Node&, TensorList&& g) { return std::move(g); });
    set_history(out, std::move(node));
  }
  return out;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::to(Device device, Dtype dtype) const {
  detail::check_defined(*this, "to");
  if (device == this->device() && dtype == this->dtype()) return *this;
  Tensor out = detail::empty_contig(sizes(), dtype, device);
  detail::copy_kernel(out, *this);
  if (needs_grad(*this) && nnkit::is_floating_point(dtype)) {
    Device in_device = this->device();
    Dtype in_dtype = this->dtype();
    auto node = make_node("ToCopyBackward0", {this}, [in_device, in_dtype](autograd::Node&, TensorList&& g) {
      return TensorList{g[0].to(in_device, in_dtype)};
    });
    set_history(out, std::move(node));
  }
  return out;
}
Tensor Tensor::to(Device device) const { return to(device, dtype()); }
Tensor Tensor::to(Dtype dtype) const { return to(device(), dtype); }

namespace {
// After an in-place op that overwrote all values with constants: no gradient flows back.
void cut_history(Tensor& self) {
  if (!needs_grad(self)) return;
  auto node = make_node("FillBackward0", {&self}, [](autograd::Node&, TensorList&&) { return TensorList{Tensor()}; });
  autograd::rebase_history(self, node);
}
}  // namespace

Tensor& Tensor::fill_(double value) {
  detail::check_defined(*this, "fill_");
  autograd::check_inplace(*this, "fill_");
  detail::backend(*this).fill(*this, value);
  impl()->storage()->bump_version();
  cut_history(*this);
  return *this;
}

Tensor& Tensor::zero_() { return fill_(0.0); }

}  // namespace nnkit
