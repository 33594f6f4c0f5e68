// Custom autograd functions (include/nnkit/autograd/custom_function.h): the context, the
// non-template part of CppNode<T>, and IValue. Semantics follow LibTorch's
// torch/csrc/autograd/custom_function.{h,cpp}.
#include "nnkit/autograd/custom_function.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include "autograd/function.h"
#include "nnkit/ops.h"

namespace nnkit::autograd {

// ---- IValue ----
namespace {
[[noreturn]] void wrong_type(const IValue& v, const char* expected) {
  detail::throw_error(detail::concat("[saved_data] expected a value of type ", expected, ", but it holds ",
                                     v.type_name()));
}
}  // namespace

const char* IValue::type_name() const {
  static constexpr const char* names[] = {"None", "int", "double", "bool", "Tensor", "string", "int[]"};
  return names[v_.index()];
}
int64_t IValue::toInt() const {
  if (!isInt()) wrong_type(*this, "int");
  return std::get<int64_t>(v_);
}
double IValue::toDouble() const {
  if (isInt()) return static_cast<double>(std::get<int64_t>(v_));
  if (!isDouble()) wrong_type(*this, "double");
  return std::get<double>(v_);
}
bool IValue::toBool() const {
  if (!isBool()) wrong_type(*this, "bool");
  return std::get<bool>(v_);
}
const Tensor& IValue::toTensor() const {
  if (!isTensor()) wrong_type(*this, "Tensor");
  return std::get<Tensor>(v_);
}
const std::string& IValue::toStringRef() const {
  if (!isString()) wrong_type(*this, "string");
  return std::get<std::string>(v_);
}
const std::vector<int64_t>& IValue::toIntVector() const {
  if (!isIntList()) wrong_type(*this, "int[]");
  return std::get<std::vector<int64_t>>(v_);
}

// ---- the context ----
namespace function_detail {

struct TensorMeta {
  bool defined = false;
  Shape sizes;
  Dtype dtype = kFloat32;
  Device device;
  static TensorMeta of(const Tensor& t) {
    if (!t.defined()) return {};
    return {true, t.sizes(), t.dtype(), t.device()};
  }
};

struct ContextState {
  const CppNodeBase* node = nullptr;  // the node that owns this context
  std::weak_ptr<Node> self;           // the same, for giving saved outputs their grad_fn back
  bool in_forward = false;
  bool materialize_grads = true;
  bool released = false;
  size_t num_tensor_inputs = 0;
  // Forward only (cleared once the outputs are wrapped).
  TensorList inputs;
  TensorList to_save;
  TensorList dirty;
  TensorList non_differentiable;
  // Backward.
  std::vector<SavedTensor> saved;
  std::vector<bool> is_tensor;  // one per forward argument
  std::vector<TensorMeta> input_meta;
  std::vector<TensorMeta> output_meta;
  std::mutex mutex;  // backward of one node runs on one thread at a time (user state in ctx)

  std::string_view name() const { return node ? std::string_view(node->name_ref()) : "custom function"; }
};

namespace {
bool contains(const TensorList& list, const Tensor& t) {
  return std::any_of(list.begin(), list.end(), [&](const Tensor& x) { return x.is_same(t); });
}
// PyTorch's is_expandable_to: `shape` broadcasts to `desired`.
bool expandable_to(const Shape& shape, const Shape& desired) {
  if (shape.size() > desired.size()) return false;
  const size_t off = desired.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] != 1 && shape[i] != desired[off + i]) return false;
  return true;
}
}  // namespace

std::string cpp_node_name(const char* mangled) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = status == 0 && demangled ? demangled : mangled;
  std::free(demangled);
  constexpr std::string_view anon = "(anonymous namespace)::";
  for (size_t p; (p = name.find(anon)) != std::string::npos;) name.erase(p, anon.size());
  return "CppNode<" + name + ">";
}

}  // namespace function_detail

using function_detail::contains;

AutogradContext::AutogradContext() : state_(std::make_unique<function_detail::ContextState>()) {}
AutogradContext::~AutogradContext() = default;

void AutogradContext::save_for_backward(TensorList to_save) {
  NNKIT_CHECK(state_->in_forward, "[", state_->name(), "] save_for_backward can only be called in forward");
  state_->to_save = std::move(to_save);
}

void AutogradContext::mark_dirty(const TensorList& inputs) {
  auto& st = *state_;
  NNKIT_CHECK(st.in_forward, "[", st.name(), "] mark_dirty can only be called in forward");
  for (size_t i = 0; i < inputs.size(); ++i) {
    NNKIT_CHECK(inputs[i].defined() && contains(st.inputs, inputs[i]), "[", st.name(), "] mark_dirty: tensor ", i,
                " is not a Tensor argument of forward (only inputs can be marked as modified in place)");
    st.dirty.push_back(inputs[i]);
  }
}

void AutogradContext::mark_non_differentiable(const TensorList& outputs) {
  auto& st = *state_;
  NNKIT_CHECK(st.in_forward, "[", st.name(), "] mark_non_differentiable can only be called in forward");
  for (const Tensor& t : outputs)
    if (t.defined()) st.non_differentiable.push_back(t);
}

void AutogradContext::set_materialize_grads(bool value) { state_->materialize_grads = value; }

TensorList AutogradContext::get_saved_variables() const {
  auto& st = *state_;
  if (st.released) throw_released(st.name());
  std::shared_ptr<Node> self = st.self.lock();
  TensorList out;
  out.reserve(st.saved.size());
  for (const SavedTensor& s : st.saved) out.push_back(s.unpack(self));
  return out;
}

bool AutogradContext::needs_input_grad(size_t tensor_index) const {
  auto& st = *state_;
  NNKIT_CHECK(tensor_index < st.num_tensor_inputs, "[", st.name(), "] needs_input_grad(", tensor_index,
              "): forward has ", st.num_tensor_inputs,
              " Tensor argument(s) (the index counts Tensor arguments only, as in LibTorch)");
  if (!st.node) return false;
  const auto& edges = st.node->next_edges();
  return tensor_index < edges.size() && edges[tensor_index].valid();
}

// ---- CppNodeBase ----
namespace function_detail {

bool CppNodeBase::begin(std::vector<bool> is_tensor, const TensorList& tensor_inputs,
                        const std::shared_ptr<Node>& self) {
  auto& st = *ctx.state_;
  st.node = this;
  st.self = self;
  st.is_tensor = std::move(is_tensor);
  st.inputs = tensor_inputs;
  st.num_tensor_inputs = tensor_inputs.size();
  const bool executable = needs_grad_list(tensor_inputs);
  if (executable) {
    next_edges_.reserve(tensor_inputs.size());
    st.input_meta.reserve(tensor_inputs.size());
    for (const Tensor& t : tensor_inputs) {
      next_edges_.push_back(requires_grad(t) ? gradient_edge(t) : Edge{});
      st.input_meta.push_back(TensorMeta::of(t));
    }
  }
  st.in_forward = true;
  return executable;
}

TensorList CppNodeBase::finish(TensorList outputs, const std::shared_ptr<Node>& self, bool executable) {
  auto& st = *ctx.state_;
  st.in_forward = false;
  for (const Tensor& d : st.dirty) {
    NNKIT_CHECK(contains(outputs, d), "[", name_,
                "] an input marked dirty (mark_dirty) was not returned by forward: return every tensor it "
                "modified in place");
    d.impl()->storage()->bump_version();  // as LibTorch: the change may have bypassed nnkit's ops
  }
  for (const Tensor& t : st.non_differentiable)
    NNKIT_CHECK(contains(outputs, t), "[", name_, "] mark_non_differentiable: a tensor passed to it is not an output "
                "of forward");

  if (executable) {
    set_num_outputs(static_cast<uint32_t>(outputs.size()));
    st.output_meta.resize(outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i) {
      Tensor& out = outputs[i];
      if (!out.defined()) continue;
      st.output_meta[i] = TensorMeta::of(out);
      const bool is_input = contains(st.inputs, out);
      const bool is_dirty = contains(st.dirty, out);
      const bool differentiable = out.is_floating_point() && !contains(st.non_differentiable, out);
      const auto nr = static_cast<uint32_t>(i);
      if (!differentiable) {
        // Detached aliases rather than changing what the caller holds.
        if (is_input || requires_grad(out)) out = out.detach();
      } else if (is_dirty) {
        check_inplace(out, name_);  // a leaf that requires grad may not be modified in place
        set_history(out, self, nr);
      } else {
        // An input returned as is keeps its own history: the output is a new handle on it.
        if (is_input || requires_grad(out)) out = out.detach();
        set_history(out, self, nr);
      }
    }
    st.saved.reserve(st.to_save.size());
    for (const Tensor& t : st.to_save) {
      const auto* meta = t.defined() ? t.impl()->autograd() : nullptr;
      const bool is_output = meta && meta->grad_fn.get() == this;
      st.saved.emplace_back(t, is_output, is_output ? meta->output_nr : 0);
    }
  }
  st.inputs.clear();
  st.to_save.clear();
  st.dirty.clear();
  st.non_differentiable.clear();
  return outputs;
}

TensorList CppNodeBase::apply(TensorList&& grad_outputs) {
  auto& st = *ctx.state_;
  std::lock_guard<std::mutex> lock(st.mutex);
  grad_outputs.resize(num_outputs());
  if (st.materialize_grads)
    for (size_t i = 0; i < grad_outputs.size(); ++i) {
      const TensorMeta& m = st.output_meta[i];
      if (!grad_outputs[i].defined() && m.defined)
        grad_outputs[i] = zeros(m.sizes, {.dtype = m.dtype, .device = m.device, .requires_grad = false});
    }
  TensorList grads = call_backward(std::move(grad_outputs));

  const size_t num_args = st.is_tensor.size();
  // Extra gradients are allowed when they are all undefined (as in LibTorch).
  if (grads.size() > num_args &&
      std::all_of(grads.begin() + static_cast<std::ptrdiff_t>(num_args), grads.end(),
                  [](const Tensor& g) { return !g.defined(); }))
    grads.resize(num_args);
  NNKIT_CHECK(grads.size() == num_args, "[", name_, "] backward returned an incorrect number of gradients (expected ",
              num_args, ", got ", grads.size(),
              "): return one per argument of forward, an undefined Tensor() for non-Tensor arguments");

  TensorList result;
  result.reserve(st.num_tensor_inputs);
  for (size_t i = 0; i < num_args; ++i) {
    Tensor g = std::move(grads[i]);
    if (!st.is_tensor[i]) {
      NNKIT_CHECK(!g.defined(), "[", name_, "] backward returned a defined gradient at index ", i,
                  ", but argument ", i, " of forward is not a Tensor: return an undefined Tensor() there");
      continue;
    }
    const size_t k = result.size();
    if (!g.defined() || k >= next_edges_.size() || !next_edges_[k].valid()) {
      result.emplace_back();  // no gradient needed for this input
      continue;
    }
    const TensorMeta& m = st.input_meta[k];
    NNKIT_CHECK(g.is_floating_point(), "[", name_, "] backward returned a gradient of dtype ", g.dtype(),
                " at index ", i, "; gradients must be floating point");
    NNKIT_CHECK(g.device() == m.device, "[", name_, "] backward returned a gradient on ", g.device(), " at index ", i,
                ", but the input is on ", m.device);
    if (g.sizes() != m.sizes) {
      NNKIT_CHECK(expandable_to(m.sizes, g.sizes()), "[", name_, "] backward returned an invalid gradient at index ",
                  i, " - got ", g.sizes(), " but expected shape compatible with ", m.sizes);
      g = sum_to(g, m.sizes);  // a broadcast gradient is reduced, as PyTorch's validate_outputs does
    }
    if (g.dtype() != m.dtype) g = g.to(m.dtype);
    result.push_back(std::move(g));
  }
  return result;
}

void CppNodeBase::release_variables() {
  auto& st = *ctx.state_;
  std::lock_guard<std::mutex> lock(st.mutex);
  st.saved.clear();
  st.released = true;
}

}  // namespace function_detail
}  // namespace nnkit::autograd
