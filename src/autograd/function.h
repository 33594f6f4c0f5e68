#pragma once
// Private helpers for writing an op's gradient rule:
//   if (autograd::needs_grad(a, b)) {
//     auto node = autograd::make_node("MulBackward0", {a, b}, [sa = SavedTensor(a), ...](auto& self, TensorList&& g) {...});
//     autograd::set_history(out, node);
//   }
#include <initializer_list>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include "autograd/meta.h"
#include "nnkit/autograd/grad_mode.h"
#include "nnkit/autograd/node.h"

namespace nnkit::autograd {

inline bool requires_grad(const Tensor& t) {
  if (!t.defined()) return false;
  auto* m = t.impl()->autograd();
  return m && (m->requires_grad || m->grad_fn);
}

// True when grad mode is on and any input requires grad.
template <typename... T>
inline bool needs_grad(const T&... ts) {
  return GradMode::is_enabled() && (requires_grad(ts) || ...);
}
inline bool needs_grad_list(const TensorList& ts) {
  if (!GradMode::is_enabled()) return false;
  for (auto& t : ts)
    if (requires_grad(t)) return true;
  return false;
}

// The edge a gradient for `t` must flow into: its grad_fn, or its leaf accumulator.
Edge gradient_edge(const Tensor& t);

// Makes `t` an output of `node` (output_nr-th), giving it history. Marks it a view when
// `is_view` (views of tensors with history refuse in-place ops).
void set_history(const Tensor& t, std::shared_ptr<Node> node, uint32_t output_nr = 0, bool is_view = false);

// A tensor saved for backward. Inputs are kept as they are (so create_graph works); outputs
// are kept as detached aliases that get their grad_fn back on unpack (no reference cycle), as
// output `output_nr` of the node. unpack() fails if the tensor was modified in place since it
// was saved.
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t, bool is_output = false, uint32_t output_nr = 0);
  Tensor unpack(const std::shared_ptr<Node>& self = nullptr) const;
  bool defined() const { return data_.defined(); }

 private:
  Tensor data_;
  uint32_t version_ = 0;
  bool is_output_ = false;
  bool output_requires_grad_ = false;
  uint32_t output_nr_ = 0;
  std::string_view op_;
};

[[noreturn]] void throw_released(std::string_view node_name);

// The owning pointer the engine holds for `self` while it runs `self` on this thread (what
// shared_from_this would give; Node does not derive from enable_shared_from_this, whose weak
// reference costs three atomic updates per node); null when `self` is applied outside the
// engine. Backward functions pass it to SavedTensor::unpack.
std::shared_ptr<Node> running_node(const Node& self);

// A node whose backward is the callable `fn(Node& self, TensorList&& grad_outputs)`. The
// callable (and everything it captured, i.e. the saved tensors) is destroyed on release.
template <typename F>
class LambdaNode final : public Node {
 public:
  LambdaNode(std::string_view name, F fn) : name_(name), fn_(std::move(fn)) {}
  std::string name() const override { return std::string(name_); }
  TensorList apply(TensorList&& grads) override {
    if (!fn_) throw_released(name_);
    return (*fn_)(*this, std::move(grads));
  }
  void release_variables() override { fn_.reset(); }

 private:
  std::string_view name_;
  std::optional<F> fn_;
};

// Nodes (with their shared_ptr control block) come from nnkit's per-thread block cache, like
// tensors: a graph is built and dropped at every training step.
template <typename T>
using PoolAllocator = BlockAllocator<T>;
template <typename T, typename... Args>
std::shared_ptr<T> make_pooled(Args&&... args) {
  return std::allocate_shared<T>(PoolAllocator<T>(), std::forward<Args>(args)...);
}

template <typename F>
std::shared_ptr<Node> make_node(std::string_view name, std::initializer_list<const Tensor*> inputs, F fn) {
  auto node = make_pooled<LambdaNode<F>>(name, std::move(fn));
  auto& edges = node->mutable_next_edges();
  edges.reserve(inputs.size());
  for (const Tensor* t : inputs) edges.push_back(requires_grad(*t) ? gradient_edge(*t) : Edge{});
  return node;
}
template <typename F>
std::shared_ptr<Node> make_node_list(std::string_view name, const TensorList& inputs, F fn) {
  auto node = make_pooled<LambdaNode<F>>(name, std::move(fn));
  auto& edges = node->mutable_next_edges();
  edges.reserve(inputs.size());
  for (const Tensor& t : inputs) edges.push_back(requires_grad(t) ? gradient_edge(t) : Edge{});
  return node;
}

// Checks that an in-place op may modify `self` under autograd, as PyTorch does: a leaf that
// requires grad may not be changed in place while grad mode is on.
void check_inplace(const Tensor& self, std::string_view op);

// After an in-place op on `self` that the graph must see: `node` becomes self's new grad_fn
// (its edge 0 must be self's previous gradient edge).
void rebase_history(const Tensor& self, const std::shared_ptr<Node>& node);

}  // namespace nnkit::autograd
