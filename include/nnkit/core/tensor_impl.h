#pragma once
// TensorImpl: what a Tensor handle points to. Sizes, strides and offset describe a view into a
// shared Storage; autograd state is allocated only for tensors that take part in autograd.
#include <memory>

#include "nnkit/core/dtype.h"
#include "nnkit/core/intrusive.h"
#include "nnkit/core/shape.h"
#include "nnkit/core/storage.h"

namespace nnkit {
namespace autograd {
struct AutogradMeta;
}

class TensorImpl : public RefCounted {
 public:
  TensorImpl(IntrusivePtr<Storage> storage, Shape sizes, Shape strides, int64_t offset, Dtype dtype);
  ~TensorImpl() override;

  const Shape& sizes() const { return sizes_; }
  const Shape& strides() const { return strides_; }
  int64_t offset() const { return offset_; }
  int64_t numel() const { return numel_; }
  Dtype dtype() const { return dtype_; }
  Device device() const { return storage_->device(); }
  bool is_contiguous() const { return contiguous_; }
  const IntrusivePtr<Storage>& storage() const { return storage_; }
  void* data() const {
    return static_cast<char*>(storage_->data()) + offset_ * static_cast<int64_t>(element_size(dtype_));
  }

  // Re-points this impl at new memory (used by in-place moves such as Module::to, so handles
  // users hold stay valid). Keeps autograd state.
  void set_storage(IntrusivePtr<Storage> storage, Shape sizes, Shape strides, int64_t offset, Dtype dtype);

  autograd::AutogradMeta* autograd() const { return autograd_.get(); }
  autograd::AutogradMeta& autograd_or_create();

 private:
  void refresh();
  IntrusivePtr<Storage> storage_;
  Shape sizes_;
  Shape strides_;
  int64_t offset_ = 0;
  int64_t numel_ = 0;
  Dtype dtype_ = Dtype::Float32;
  bool contiguous_ = true;
  std::unique_ptr<autograd::AutogradMeta> autograd_;
};

// Row-major (C-order) strides for the given sizes.
Shape contiguous_strides(const Shape& sizes);

}  // namespace nnkit
