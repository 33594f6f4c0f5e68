// Module hooks: registration with removable handles, global hooks, and Module::call, which
// runs pre-hooks, forward and hooks, and wires full backward hooks through identity autograd
// nodes around the module's inputs and outputs (PyTorch's BackwardHook design).
#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_set>

#include "autograd/function.h"
#include "nn/internal.h"
#include "nnkit/nn/module.h"
#include "nnkit/ops.h"

namespace nnkit::nn {

template <typename F>
struct HookEntry {
  F fn;
  bool removed = false;
};
template <typename F>
using HookList = std::vector<std::shared_ptr<HookEntry<F>>>;

struct Module::Hooks {
  HookList<ForwardPreHook> forward_pre;
  HookList<ForwardHook> forward;
  HookList<BackwardPreHook> backward_pre;
  HookList<BackwardHook> backward;
  std::mutex mutex;  // guards the lists (hooks may be added or removed from other threads)
  bool empty() const { return forward_pre.empty() && forward.empty() && backward_pre.empty() && backward.empty(); }
};

namespace {

std::shared_ptr<Module::Hooks>& global_hooks() {
  static auto hooks = std::make_shared<Module::Hooks>();
  return hooks;
}
std::atomic<int> global_hook_count{0};

template <typename F>
HookHandle add_hook(const std::shared_ptr<Module::Hooks>& hooks, HookList<F> Module::Hooks::*list, F fn, bool prepend,
                    bool global) {
  auto entry = std::make_shared<HookEntry<F>>(HookEntry<F>{std::move(fn), false});
  {
    std::lock_guard<std::mutex> lock(hooks->mutex);
    auto& l = (*hooks).*list;
    if (prepend)
      l.insert(l.begin(), entry);
    else
      l.push_back(entry);
  }
  if (global) ++global_hook_count;
  std::weak_ptr<Module::Hooks> weak_hooks = hooks;
  std::weak_ptr<HookEntry<F>> weak_entry = entry;
  return HookHandle([weak_hooks, weak_entry, list, global] {
    auto e = weak_entry.lock();
    if (e) e->removed = true;  // a snapshot being fired skips it from now on
    if (auto h = weak_hooks.lock()) {
      std::lock_guard<std::mutex> lock(h->mutex);
      std::erase_if((*h).*list, [&](const std::shared_ptr<HookEntry<F>>& x) { return x == e; });
    }
    if (global) --global_hook_count;
  });
}

template <typename F>
HookList<F> snapshot(const std::shared_ptr<Module::Hooks>& hooks, HookList<F> Module::Hooks::*list) {
  if (!hooks) return {};
  std::lock_guard<std::mutex> lock(hooks->mutex);
  return (*hooks).*list;
}

// Global hooks first, then the module's own (PyTorch's order).
template <typename F>
HookList<F> collect(const std::shared_ptr<Module::Hooks>& own, HookList<F> Module::Hooks::*list) {
  HookList<F> all;
  if (global_hook_count.load(std::memory_order_relaxed) > 0) all = snapshot(global_hooks(), list);
  auto mine = snapshot(own, list);
  all.insert(all.end(), mine.begin(), mine.end());
  return all;
}

// An identity node whose backward calls `fn` on the gradients of its outputs.
class BackwardHookNode final : public autograd::Node {
 public:
  explicit BackwardHookNode(std::function<TensorList(TensorList&&)> fn) : fn_(std::move(fn)) {}
  std::string name() const override { return "BackwardHookFunctionBackward"; }
  TensorList apply(TensorList&& grads) override { return fn_(std::move(grads)); }

 private:
  std::function<TensorList(TensorList&&)> fn_;
};

// Replaces the tensors of `ts` that require grad by aliases whose gradient passes through one
// BackwardHookNode (fn sees the gradients in that order). Returns the indices wrapped.
std::vector<size_t> wrap(TensorList& ts, std::function<TensorList(TensorList&&)> fn) {
  std::vector<size_t> idx;
  for (size_t i = 0; i < ts.size(); ++i)
    if (autograd::requires_grad(ts[i]) && GradMode::is_enabled()) idx.push_back(i);
  if (idx.empty()) return idx;
  auto node = std::make_shared<BackwardHookNode>(std::move(fn));
  node->set_num_outputs(uint32_t(idx.size()));
  for (size_t i : idx) node->mutable_next_edges().push_back(autograd::gradient_edge(ts[i]));
  for (size_t k = 0; k < idx.size(); ++k) {
    Tensor alias = ts[idx[k]].detach();
    autograd::set_history(alias, node, uint32_t(k));
    ts[idx[k]] = alias;
  }
  return idx;
}

struct BackwardState {
  Module* module;
  HookList<BackwardPreHook> pre;
  HookList<BackwardHook> post;
  size_t n_inputs = 0;
  size_t n_outputs = 0;
  std::vector<size_t> input_idx, output_idx;
  TensorList grad_outputs;
  std::mutex mutex;
};

TensorList expand_list(const TensorList& sub, const std::vector<size_t>& idx, size_t n) {
  TensorList full(n);
  for (size_t k = 0; k < idx.size() && k < sub.size(); ++k) full[idx[k]] = sub[k];
  return full;
}
TensorList shrink_list(const TensorList& full, const std::vector<size_t>& idx) {
  TensorList sub;
  for (size_t i : idx) sub.push_back(i < full.size() ? full[i] : Tensor());
  return sub;
}

void run_backward_hooks(BackwardState& st, TensorList& grad_inputs) {
  for (auto& h : st.post) {
    if (h->removed) continue;
    TensorList before = grad_inputs;
    h->fn(*st.module, grad_inputs, st.grad_outputs);
    if (grad_inputs.size() != before.size())
      nnkit::detail::throw_error("[" + st.module->name() + "] a full backward hook changed the number of grad_inputs from " +
                                 std::to_string(before.size()) + " to " + std::to_string(grad_inputs.size()));
    for (size_t i = 0; i < grad_inputs.size(); ++i)
      if (grad_inputs[i].defined() && before[i].defined() && grad_inputs[i].sizes() != before[i].sizes())
        nnkit::detail::throw_error(nnkit::detail::concat("[", st.module->name(), "] a full backward hook returned grad_input ",
                                                         i, " of shape ", grad_inputs[i].sizes(), ", expected ",
                                                         before[i].sizes()));
  }
}

}  // namespace

HookHandle Module::register_forward_pre_hook(ForwardPreHook hook, bool prepend) {
  if (!hooks_) hooks_ = std::make_shared<Hooks>();
  return add_hook(hooks_, &Hooks::forward_pre, std::move(hook), prepend, false);
}
HookHandle Module::register_forward_hook(ForwardHook hook, bool prepend) {
  if (!hooks_) hooks_ = std::make_shared<Hooks>();
  return add_hook(hooks_, &Hooks::forward, std::move(hook), prepend, false);
}
HookHandle Module::register_full_backward_pre_hook(BackwardPreHook hook, bool prepend) {
  if (!hooks_) hooks_ = std::make_shared<Hooks>();
  return add_hook(hooks_, &Hooks::backward_pre, std::move(hook), prepend, false);
}
HookHandle Module::register_full_backward_hook(BackwardHook hook, bool prepend) {
  if (!hooks_) hooks_ = std::make_shared<Hooks>();
  return add_hook(hooks_, &Hooks::backward, std::move(hook), prepend, false);
}

HookHandle register_module_forward_pre_hook(ForwardPreHook hook) {
  return add_hook(global_hooks(), &Module::Hooks::forward_pre, std::move(hook), false, true);
}
HookHandle register_module_forward_hook(ForwardHook hook) {
  return add_hook(global_hooks(), &Module::Hooks::forward, std::move(hook), false, true);
}
HookHandle register_module_full_backward_pre_hook(BackwardPreHook hook) {
  return add_hook(global_hooks(), &Module::Hooks::backward_pre, std::move(hook), false, true);
}
HookHandle register_module_full_backward_hook(BackwardHook hook) {
  return add_hook(global_hooks(), &Module::Hooks::backward, std::move(hook), false, true);
}

// The common call: one tensor in, no hooks anywhere. Straight to forward(), no TensorList.
Tensor Module::operator()(const Tensor& x) {
  if (unregistered_.empty() && !(hooks_ && !hooks_->empty()) &&
      global_hook_count.load(std::memory_order_relaxed) == 0) [[likely]] {
    internal::CallGuard guard(this);
    check_input(x, 0);
    return forward(x);
  }
  TensorList out = call(TensorList{x});
  if (out.size() != 1) fail("returned " + std::to_string(out.size()) + " outputs; call it with a TensorList to get them all");
  return std::move(out[0]);
}

TensorList Module::call(TensorList inputs) {
  if (!unregistered_.empty()) [[unlikely]]
    internal::check_unregistered(*this, unregistered_);
  bool hooked = (hooks_ && !hooks_->empty()) || global_hook_count.load(std::memory_order_relaxed) > 0;
  if (!hooked) [[likely]] {
    internal::CallGuard guard(this);
    check_inputs(inputs);
    return forward_list(inputs);
  }

  for (auto& h : collect(hooks_, &Hooks::forward_pre))
    if (!h->removed) h->fn(*this, inputs);
  {
    internal::CallGuard guard(this);
    check_inputs(inputs);
  }

  auto pre = collect(hooks_, &Hooks::backward_pre);
  auto post = collect(hooks_, &Hooks::backward);
  std::shared_ptr<BackwardState> st;
  if ((!pre.empty() || !post.empty()) && GradMode::is_enabled()) {
    st = std::make_shared<BackwardState>();
    st->module = this;
    st->pre = std::move(pre);
    st->post = std::move(post);
    st->n_inputs = inputs.size();
    std::weak_ptr<BackwardState> weak = st;
    st->input_idx = wrap(inputs, [weak](TensorList&& grads) {
      auto s = weak.lock();
      if (!s) return std::move(grads);
      std::lock_guard<std::mutex> lock(s->mutex);
      TensorList grad_inputs = expand_list(grads, s->input_idx, s->n_inputs);
      run_backward_hooks(*s, grad_inputs);
      return shrink_list(grad_inputs, s->input_idx);
    });
  }

  TensorList outputs;
  {
    internal::CallGuard guard(this);
    outputs = forward_list(inputs);
  }

  for (auto& h : collect(hooks_, &Hooks::forward))
    if (!h->removed) h->fn(*this, inputs, outputs);

  if (st) {
    st->n_outputs = outputs.size();
    // The output-side node owns the state; the input-side node reaches it while it lives.
    st->output_idx = wrap(outputs, [st](TensorList&& grads) {
      std::lock_guard<std::mutex> lock(st->mutex);
      TensorList grad_outputs = expand_list(grads, st->output_idx, st->n_outputs);
      for (auto& h : st->pre)
        if (!h->removed) h->fn(*st->module, grad_outputs);
      st->grad_outputs = grad_outputs;
      if (st->input_idx.empty()) {
        // No input needs a gradient: the hooks run now, with undefined grad_inputs (PyTorch
        // passes None).
        TensorList grad_inputs(st->n_inputs);
        run_backward_hooks(*st, grad_inputs);
      }
      return shrink_list(grad_outputs, st->output_idx);
    });
  }
  return outputs;
}

}  // namespace nnkit::nn
