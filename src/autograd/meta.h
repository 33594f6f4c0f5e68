#pragma once
// Private: per-tensor autograd state, allocated only for tensors that take part in autograd.
#include <memory>

#include "nnkit/autograd/node.h"
#include "nnkit/core/tensor.h"

namespace nnkit::autograd {

struct AutogradMeta {
  // From nnkit's block cache (one per tensor that takes part in autograd).
  static void* operator new(size_t bytes) { return RefCounted::operator new(bytes); }
  static void operator delete(void* p, size_t bytes) noexcept { RefCounted::operator delete(p, bytes); }

  AutogradMeta() = default;
  AutogradMeta(const AutogradMeta&) = delete;
  AutogradMeta& operator=(const AutogradMeta&) = delete;
  ~AutogradMeta();

  bool requires_grad = false;
  bool retains_grad = false;
  // Produced by a view op from a tensor with autograd history (in-place ops on such views are
  // refused, see check_inplace).
  bool is_view = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;
  uint32_t output_nr = 0;
  // A leaf's gradient accumulator, made on first use and owned for the leaf's life (it does
  // not own the leaf; the destructor detaches it).
  std::shared_ptr<Node> grad_accumulator;
  // Hooks on a leaf's gradient, run by its AccumulateGrad node before accumulation.
  std::shared_ptr<TensorHookList> leaf_hooks;
};

}  // namespace nnkit::autograd
