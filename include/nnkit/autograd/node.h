#pragma once
// The autograd graph: a Node per differentiable op application. A node receives the gradients
// w.r.t. its outputs and returns the gradients w.r.t. its inputs, one per next edge.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nnkit/core/tensor.h"

namespace nnkit::autograd {

class Node;

// Allocates from nnkit's per-thread block cache (the one tensors use) instead of malloc: a
// graph's nodes and their edge lists are built and dropped at every step.
template <typename T>
struct BlockAllocator {
  using value_type = T;
  BlockAllocator() = default;
  template <typename U>
  BlockAllocator(const BlockAllocator<U>&) {}  // NOLINT: rebinding
  T* allocate(size_t n) { return static_cast<T*>(RefCounted::operator new(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { RefCounted::operator delete(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const BlockAllocator<U>&) const {
    return true;
  }
};

// Where a gradient goes: input `input_nr` of node `fn`. An empty edge means "no gradient".
struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t input_nr = 0;
  bool valid() const { return fn != nullptr; }
};
using EdgeList = std::vector<Edge, BlockAllocator<Edge>>;

// Hooks on the gradient flowing into one output of a node (tensor hooks of non-leaf tensors).
struct TensorHookList {
  struct Entry {
    uint64_t key;
    uint32_t output_nr;
    TensorHook fn;
  };
  std::vector<Entry> entries;
};

class Node {
 public:
  Node();
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // PyTorch-style name, e.g. "AddBackward0".
  virtual std::string name() const = 0;
  // grad_outputs has one entry per output (undefined where nothing flowed); returns one
  // gradient per next edge (undefined for inputs that get none).
  virtual TensorList apply(TensorList&& grad_outputs) = 0;
  // Frees saved tensors once backward has run without retain_graph.
  virtual void release_variables() {}

  const EdgeList& next_edges() const { return next_edges_; }
  EdgeList& mutable_next_edges() { return next_edges_; }
  uint32_t num_outputs() const { return num_outputs_; }
  void set_num_outputs(uint32_t n) { num_outputs_ = n; }
  // Creation order; the engine runs later nodes first.
  uint64_t sequence_nr() const { return sequence_nr_; }

  // Tensor hooks on this node's outputs (registered through Tensor::register_hook).
  RemovableHandle add_tensor_hook(uint32_t output_nr, TensorHook hook);
  // Runs the hooks on grad_outputs in registration order (engine use).
  void run_tensor_hooks(TensorList& grad_outputs);
  bool has_tensor_hooks() const { return hooks_ && !hooks_->entries.empty(); }
  // A hook keyed by an owner pointer that cannot be removed through a handle (retain_grad).
  void set_retain_grad_hook(uint32_t output_nr, const void* owner, TensorHook hook);
  void remove_retain_grad_hook(const void* owner);

 protected:
  EdgeList next_edges_;
  uint32_t num_outputs_ = 1;

 private:
  uint64_t sequence_nr_;
  std::shared_ptr<TensorHookList> hooks_;
  struct RetainEntry {
    uint32_t output_nr;
    const void* owner;
    TensorHook fn;
  };
  std::vector<RetainEntry> retain_hooks_;
};

// Computes and returns the gradients of `outputs` w.r.t. `inputs` without touching `.grad()`
// (PyTorch's torch.autograd.grad). allow_unused=false makes an input the graph never reaches
// an error; with true, its gradient is an undefined Tensor.
TensorList grad(const TensorList& outputs, const TensorList& inputs, const TensorList& grad_outputs = {},
                bool retain_graph = false, bool create_graph = false, bool allow_unused = false);

// Runs backward from several roots at once (torch.autograd.backward).
void backward(const TensorList& tensors, const TensorList& grad_tensors = {}, bool retain_graph = false,
              bool create_graph = false);

}  // namespace nnkit::autograd
