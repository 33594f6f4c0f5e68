// The autograd engine: builds the dependency counts of the graph reachable from the roots and
// runs nodes in reverse creation order (PyTorch's order on one device), summing the gradients
// that meet at a node.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <queue>
#include <utility>

#include "autograd/function.h"
#include "core/tls.h"
#include "nnkit/ops.h"

namespace nnkit::autograd {

namespace {
// Per thread, as PyTorch's sequence numbers are: the engine only uses them to order nodes that
// are ready anyway, and an atomic counter would cost an atomic update per node.
NNKIT_TLS thread_local uint64_t next_sequence_nr = 0;
std::atomic<uint64_t> next_hook_key{1};

// Accumulates into a leaf's .grad(). The leaf's autograd state owns it for the leaf's whole
// life (so an op on a leaf costs one reference-count update for its edge, not a new node);
// it points back at the leaf without owning it, and ~AutogradMeta detaches it (under its
// mutex, which apply() holds while it touches the leaf). A graph that outlives the leaf still
// runs the leaf's hooks, as PyTorch's (which owns the leaf) does; the gradient itself goes
// nowhere, since nobody can read it.
class AccumulateGrad final : public Node {
 public:
  AccumulateGrad(TensorImpl* leaf, AutogradMeta* meta) : leaf_(leaf), meta_(meta) { set_num_outputs(1); }
  std::string name() const override { return "AccumulateGrad"; }
  TensorList apply(TensorList&& grads) override {
    Tensor g = std::move(grads[0]);  // declared before the locks: may hold the leaf's last handle
    if (!g.defined()) return {};
    std::shared_ptr<TensorHookList> hooks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      hooks = meta_ ? meta_->leaf_hooks : orphan_hooks_;
    }
    if (hooks) {  // user code: run without the lock
      auto entries = hooks->entries;  // a hook may remove itself
      for (auto& e : entries) {
        Tensor r = e.fn(g);
        if (r.defined()) g = std::move(r);
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (!meta_) return {};
    AutogradMeta& meta = *meta_;
    const Dtype dtype = leaf_->dtype();
    NNKIT_CHECK(g.sizes() == leaf_->sizes(), "[backward] gradient of shape ", g.sizes(),
                " does not match the leaf's shape ", leaf_->sizes());
    // Every gradient reaches its leaf on the leaf's device: a backward function that built a
    // tensor on another device (a CPU arange for a CUDA input) is reported here, not summed.
    NNKIT_CHECK(g.device() == leaf_->device(), "[backward] gradient on ", g.device(), " for a leaf on ",
                leaf_->device(), ": a backward function created its result on the wrong device");
    if (!meta.grad.defined()) {
      // Steal the incoming buffer when nobody else holds it; else copy, so .grad() never
      // aliases a tensor the user can see.
      if (!GradMode::is_enabled() && g.use_count() == 1 && g.impl()->storage().use_count() == 1 &&
          g.is_contiguous() && !requires_grad(g) && g.dtype() == dtype)
        meta.grad = g;
      else if (GradMode::is_enabled())
        meta.grad = g.to(dtype);
      else
        meta.grad = g.to(dtype).detach().clone();
    } else if (GradMode::is_enabled()) {
      meta.grad = meta.grad + g;  // create_graph: keep the graph of the sum
    } else {
      meta.grad.add_(g);
    }
    return {};
  }
  // Called by the leaf's ~AutogradMeta: from now on the leaf is gone; its hooks stay.
  void detach(AutogradMeta& meta) {
    std::lock_guard<std::mutex> lock(mutex_);
    leaf_ = nullptr;
    meta_ = nullptr;
    orphan_hooks_ = std::move(meta.leaf_hooks);
  }

 private:
  std::mutex mutex_;
  TensorImpl* leaf_;
  AutogradMeta* meta_;
  std::shared_ptr<TensorHookList> orphan_hooks_;
};
}  // namespace

namespace {
// The node the engine is running on this thread (see running_node); nested backward passes
// (from a hook) save and restore it.
NNKIT_TLS thread_local const std::shared_ptr<Node>* tl_running = nullptr;
struct RunningGuard {
  const std::shared_ptr<Node>* prev;
  explicit RunningGuard(const std::shared_ptr<Node>& n) : prev(std::exchange(tl_running, &n)) {}
  ~RunningGuard() { tl_running = prev; }
  RunningGuard(const RunningGuard&) = delete;
  RunningGuard& operator=(const RunningGuard&) = delete;
};
}  // namespace

AutogradMeta::~AutogradMeta() {
  if (grad_accumulator) static_cast<AccumulateGrad&>(*grad_accumulator).detach(*this);
}

std::shared_ptr<Node> running_node(const Node& self) {
  if (tl_running && tl_running->get() == &self) return *tl_running;
  return nullptr;
}

Node::Node() : sequence_nr_(next_sequence_nr++) {}
Node::~Node() = default;

RemovableHandle Node::add_tensor_hook(uint32_t output_nr, TensorHook hook) {
  if (!hooks_) hooks_ = std::make_shared<TensorHookList>();
  uint64_t key = next_hook_key.fetch_add(1);
  hooks_->entries.push_back({key, output_nr, std::move(hook)});
  std::weak_ptr<TensorHookList> weak = hooks_;
  return RemovableHandle([weak, key] {
    if (auto list = weak.lock())
      std::erase_if(list->entries, [key](const TensorHookList::Entry& e) { return e.key == key; });
  });
}

void Node::run_tensor_hooks(TensorList& grads) {
  if (hooks_ && !hooks_->entries.empty()) {
    auto entries = hooks_->entries;  // hooks may remove themselves while running
    for (auto& e : entries) {
      if (e.output_nr >= grads.size() || !grads[e.output_nr].defined()) continue;
      Tensor r = e.fn(grads[e.output_nr]);
      if (r.defined()) grads[e.output_nr] = std::move(r);
    }
  }
  for (auto& r : retain_hooks_)
    if (r.output_nr < grads.size() && grads[r.output_nr].defined()) r.fn(grads[r.output_nr]);
}

void Node::set_retain_grad_hook(uint32_t output_nr, const void* owner, TensorHook hook) {
  remove_retain_grad_hook(owner);
  retain_hooks_.push_back({output_nr, owner, std::move(hook)});
}
void Node::remove_retain_grad_hook(const void* owner) {
  std::erase_if(retain_hooks_, [owner](const RetainEntry& e) { return e.owner == owner; });
}

// ---- graph construction helpers ----
Edge gradient_edge(const Tensor& t) {
  auto& meta = t.impl()->autograd_or_create();
  if (meta.grad_fn) return Edge{meta.grad_fn, meta.output_nr};
  if (!meta.grad_accumulator) meta.grad_accumulator = make_pooled<AccumulateGrad>(t.impl(), &meta);
  return Edge{meta.grad_accumulator, 0};
}

void set_history(const Tensor& t, std::shared_ptr<Node> node, uint32_t output_nr, bool is_view) {
  auto& meta = t.impl()->autograd_or_create();
  meta.grad_fn = std::move(node);
  meta.output_nr = output_nr;
  meta.requires_grad = false;  // requires_grad() is derived from grad_fn for non-leaves
  meta.is_view = is_view;
}

void check_inplace(const Tensor& self, std::string_view op) {
  if (!GradMode::is_enabled()) return;
  auto* m = self.impl()->autograd();
  if (!m) return;
  NNKIT_CHECK(!(m->requires_grad && !m->grad_fn), "[", op,
              "] a leaf tensor that requires grad is being used in an in-place operation; wrap the "
              "update in nnkit::NoGradGuard, or operate on a clone()");
  NNKIT_CHECK(!(m->is_view && m->grad_fn), "[", op,
              "] in-place operation on a view of a tensor that is part of the autograd graph is not "
              "supported; use the out-of-place form or clone() the view first");
}

void rebase_history(const Tensor& self, const std::shared_ptr<Node>& node) { set_history(self, node, 0, false); }

void throw_released(std::string_view node_name) {
  detail::throw_error(detail::concat(
      "[backward] trying to backward through the graph a second time (", node_name,
      "'s saved tensors were already freed); pass retain_graph=true to the first backward() if you "
      "need to run it again"));
}

SavedTensor::SavedTensor(const Tensor& t, bool is_output, uint32_t output_nr) : is_output_(is_output) {
  if (!t.defined()) return;
  version_ = t.version();
  if (is_output) {
    // Saved while its node is being built (built-in ops: before set_history; custom functions:
    // after): the output requires grad (that is why the node exists).
    data_ = t.detach();
    output_requires_grad_ = true;
    output_nr_ = output_nr;
  } else {
    data_ = t;
  }
}

Tensor SavedTensor::unpack(const std::shared_ptr<Node>& self) const {
  if (!data_.defined()) return {};
  if (data_.version() != version_) {
    detail::throw_error(detail::concat(
        "[backward] one of the tensors needed for gradient computation has been modified by an "
        "in-place operation: ",
        data_.dtype(), " ", data_.sizes(), (self ? ", saved by " + self->name() : std::string()), ", is at version ",
        data_.version(), "; expected version ", version_,
        " instead. Avoid the in-place change (use its out-of-place form) or clone() the tensor first"));
  }
  if (is_output_ && output_requires_grad_ && self && GradMode::is_enabled()) {
    // create_graph: give the output its history back so higher-order gradients flow.
    Tensor t = data_.detach();
    set_history(t, self, output_nr_);
    return t;
  }
  return data_;
}

// ---- the engine ----
namespace {

struct Capture {
  const Node* node;
  uint32_t input_nr;  // which output of `node` (= input buffer slot)
  size_t index;       // into the result list
};

void accumulate(Tensor& slot, Tensor&& g) {
  if (!slot.defined())
    slot = std::move(g);
  else if (GradMode::is_enabled())
    slot = slot + g;
  else if (slot.use_count() == 1 && slot.impl()->storage().use_count() == 1 && slot.is_contiguous() &&
           !requires_grad(slot) && slot.sizes() == broadcast_shapes(slot.sizes(), g.sizes()))
    slot.add_(g);  // the buffer is ours alone (no other handle or view sees it): add in place
  else
    slot = slot + g;
}

// The engine's per-node state for one backward pass, found by node address through a small
// open-addressing table (a tiny graph's pass is a few nodes: std::unordered_map's per-entry
// allocations and rehashes were a fifth of a 16x16 matmul's forward + backward).
struct NodeState {
  std::shared_ptr<Node> node;
  int deps = 0;     // edges from reachable nodes not yet processed; -1 once a root is queued
  TensorList grads;  // gradients w.r.t. the node's outputs, summed as they arrive
};

class NodeTable {
 public:
  NodeTable() : slots_(16, -1) {}
  // The index of fn's state, and whether it was just added.
  std::pair<int32_t, bool> insert(const std::shared_ptr<Node>& fn) {
    if (2 * (states_.size() + 1) > slots_.size()) grow();
    size_t i = slot_of(fn.get());
    if (slots_[i] >= 0) return {slots_[i], false};
    slots_[i] = static_cast<int32_t>(states_.size());
    states_.push_back(NodeState{fn, 0, {}});
    return {slots_[i], true};
  }
  int32_t find(const Node* fn) const { return slots_[slot_of(fn)]; }
  NodeState& operator[](int32_t i) { return states_[static_cast<size_t>(i)]; }

 private:
  size_t slot_of(const Node* fn) const {
    const size_t mask = slots_.size() - 1;
    size_t i = (reinterpret_cast<uintptr_t>(fn) >> 4) * 0x9E3779B97F4A7C15ull >> 20 & mask;
    while (slots_[i] >= 0 && states_[static_cast<size_t>(slots_[i])].node.get() != fn) i = (i + 1) & mask;
    return i;
  }
  void grow() {
    std::vector<int32_t> old(slots_.size() * 2, -1);
    slots_.swap(old);
    for (size_t k = 0; k < states_.size(); ++k) slots_[slot_of(states_[k].node.get())] = static_cast<int32_t>(k);
  }
  std::vector<NodeState> states_;
  std::vector<int32_t> slots_;  // index into states_, -1 when empty
};

TensorList run(const std::vector<Edge>& roots, TensorList root_grads, bool keep_graph, bool create_graph,
               const std::vector<Edge>* capture_edges) {
  // Dependencies: how many edges from reachable nodes point at each node.
  NodeTable table;
  std::vector<int32_t> stack;
  for (auto& e : roots)
    if (e.fn) {
      auto [i, added] = table.insert(e.fn);
      if (added) stack.push_back(i);
    }
  while (!stack.empty()) {
    Node* n = table[stack.back()].node.get();
    stack.pop_back();
    for (auto& e : n->next_edges()) {
      if (!e.fn) continue;
      auto [i, added] = table.insert(e.fn);
      ++table[i].deps;
      if (added) stack.push_back(i);
    }
  }

  std::vector<Capture> captures;
  TensorList captured;
  if (capture_edges) {
    captured.resize(capture_edges->size());
    for (size_t i = 0; i < capture_edges->size(); ++i)
      captures.push_back({(*capture_edges)[i].fn.get(), (*capture_edges)[i].input_nr, i});
  }

  // Ready nodes, latest created first: (sequence number, table index).
  std::priority_queue<std::pair<uint64_t, int32_t>> ready;
  auto add_grad = [&](NodeState& st, uint32_t input_nr, Tensor&& g) {
    if (st.grads.empty()) st.grads.resize(st.node->num_outputs());
    accumulate(st.grads[input_nr], std::move(g));
  };

  EnableGradGuard mode(create_graph);
  for (size_t i = 0; i < roots.size(); ++i)
    if (roots[i].fn) add_grad(table[table.find(roots[i].fn.get())], roots[i].input_nr, std::move(root_grads[i]));
  for (auto& e : roots) {
    if (!e.fn) continue;
    const int32_t idx = table.find(e.fn.get());
    NodeState& st = table[idx];
    if (st.deps == 0) {
      st.deps = -1;  // queued once
      ready.emplace(st.node->sequence_nr(), idx);
    }
  }

  while (!ready.empty()) {
    const int32_t idx = ready.top().second;
    ready.pop();
    const std::shared_ptr<Node>& node = table[idx].node;  // (no entries are added from here on)
    TensorList grads = std::move(table[idx].grads);
    grads.resize(node->num_outputs());
    node->run_tensor_hooks(grads);

    bool is_accumulator = dynamic_cast<AccumulateGrad*>(node.get()) != nullptr;
    for (auto& c : captures)
      if (c.node == node.get() && c.input_nr < grads.size() && grads[c.input_nr].defined())
        captured[c.index] = grads[c.input_nr];

    TensorList input_grads;
    bool any = std::any_of(grads.begin(), grads.end(), [](const Tensor& g) { return g.defined(); });
    if (any && !(capture_edges && is_accumulator)) {
      RunningGuard running(node);
      input_grads = node->apply(std::move(grads));
      if (!keep_graph) node->release_variables();
    }
    const auto& edges = node->next_edges();
    for (size_t i = 0; i < edges.size(); ++i) {
      const Edge& e = edges[i];
      if (!e.fn) continue;
      const int32_t next = table.find(e.fn.get());
      NodeState& st = table[next];
      if (i < input_grads.size() && input_grads[i].defined()) add_grad(st, e.input_nr, std::move(input_grads[i]));
      // A node is run once every edge into it was processed, even if nothing flowed into it,
      // so that its own dependents are released.
      if (--st.deps == 0) ready.emplace(st.node->sequence_nr(), next);
    }
  }
  return captured;
}

std::pair<std::vector<Edge>, TensorList> prepare_roots(const TensorList& tensors, const TensorList& grads,
                                                       std::string_view op) {
  NNKIT_CHECK(grads.empty() || grads.size() == tensors.size(), "[", op, "] got ", tensors.size(), " tensors but ",
              grads.size(), " gradients");
  std::vector<Edge> edges;
  TensorList root_grads;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    NNKIT_CHECK(t.defined(), "[", op, "] tensor ", i, " is undefined");
    NNKIT_CHECK(requires_grad(t), "[", op, "] element ", i,
                " of tensors does not require grad and does not have a grad_fn (was it computed under "
                "NoGradGuard, or from tensors without requires_grad?)");
    Tensor g = grads.empty() ? Tensor() : grads[i];
    if (!g.defined()) {
      NNKIT_CHECK(t.numel() == 1, "[", op, "] grad can be implicitly created only for one-element outputs; got shape ",
                  t.sizes(), ": pass a gradient tensor");
      g = ones_like(t);
    } else {
      NNKIT_CHECK(g.sizes() == t.sizes(), "[", op, "] gradient has shape ", g.sizes(), " but the tensor has shape ",
                  t.sizes());
      NNKIT_CHECK(g.device() == t.device(), "[", op, "] gradient is on ", g.device(), " but the tensor is on ",
                  t.device());
      NNKIT_CHECK(g.is_floating_point(), "[", op, "] gradient must be floating point, got ", g.dtype());
      if (g.dtype() != t.dtype()) g = g.to(t.dtype());  // as PyTorch's validate_outputs does
    }
    edges.push_back(gradient_edge(t));
    root_grads.push_back(std::move(g));
  }
  return {std::move(edges), std::move(root_grads)};
}

}  // namespace

void backward(const TensorList& tensors, const TensorList& grad_tensors, bool retain_graph, bool create_graph) {
  auto [edges, grads] = prepare_roots(tensors, grad_tensors, "backward");
  run(edges, std::move(grads), retain_graph || create_graph, create_graph, nullptr);
}

TensorList grad(const TensorList& outputs, const TensorList& inputs, const TensorList& grad_outputs, bool retain_graph,
                bool create_graph, bool allow_unused) {
  auto [edges, grads] = prepare_roots(outputs, grad_outputs, "autograd::grad");
  std::vector<Edge> targets;
  for (size_t i = 0; i < inputs.size(); ++i) {
    NNKIT_CHECK(inputs[i].defined() && requires_grad(inputs[i]), "[autograd::grad] input ", i,
                " does not require grad");
    targets.push_back(gradient_edge(inputs[i]));
  }
  TensorList result = run(edges, std::move(grads), retain_graph || create_graph, create_graph, &targets);
  for (size_t i = 0; i < result.size(); ++i)
    NNKIT_CHECK(result[i].defined() || allow_unused, "[autograd::grad] input ", i,
                " was not used to compute the outputs; pass allow_unused=true to get an undefined gradient for it");
  return result;
}

}  // namespace nnkit::autograd
