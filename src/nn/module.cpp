// nn::Module: registries, enumeration, state, printing, the call path with hooks, and the
// guard rails of the module contract.
#include "nnkit/nn/module.h"

#include <utility>
#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <mutex>
#include <sstream>
#include <typeinfo>
#include <unordered_set>

#include "core/tls.h"
#include "autograd/function.h"
#include "nnkit/ops.h"
#include "nn/internal.h"

namespace nnkit::nn {

void throw_empty_ptr() {
  nnkit::detail::throw_error(
      "[nn::Ptr] use of an empty module handle; create modules with nn::make<M>(...) (an intentionally empty slot "
      "should hold nn::Identity)");
}

// ---- thread-local call and construction state ----
namespace {
NNKIT_TLS thread_local std::vector<const Module*> call_stack;
NNKIT_TLS thread_local bool allow_creation_in_forward = false;
NNKIT_TLS thread_local detail::ConstructionScope* current_scope = nullptr;

std::string demangle(const char* mangled) {
  int status = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string s = status == 0 && d ? d : mangled;
  std::free(d);
  // Strip namespaces (outside template arguments): "nnkit::nn::Conv2d" -> "Conv2d".
  int depth = 0;
  size_t cut = 0;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] == '<') ++depth;
    if (s[i] == '>') --depth;
    if (depth == 0 && s[i] == ':' && s[i + 1] == ':') cut = i + 2;
  }
  return s.substr(cut);
}

// "layer1.0.conv1" for the module as reached through the current call stack.
std::string path_of(const Module* m) {
  auto it = std::find(call_stack.begin(), call_stack.end(), m);
  if (it == call_stack.end()) return {};
  std::string path;
  for (auto p = call_stack.begin(); p != it; ++p) {
    const Module* parent = *p;
    const Module* child = *(p + 1);
    for (auto& [name, ptr] : parent->child_registry())
      if (ptr.get() == child) {
        path += (path.empty() ? "" : ".") + name;
        break;
      }
  }
  return path;
}

std::string describe(const Module* m) {
  std::string path = path_of(m);
  return "module '" + (path.empty() ? std::string("<root>") : path) + "' (" + m->name() + ")";
}

void check_name(const std::string& name, const char* what, const Module& m) {
  NNKIT_CHECK(!name.empty(), "[", what, "] ", m.name(), ": the name must be a non-empty string");
  NNKIT_CHECK(name.find('.') == std::string::npos, "[", what, "] ", m.name(), ": name '", name,
              "' must not contain '.' (dots separate levels in dotted names like 'layer1.0.conv1'; register the "
              "module in a child container instead)");
}

}  // namespace

internal::CallGuard::CallGuard(const Module* m) { call_stack.push_back(m); }
internal::CallGuard::~CallGuard() { call_stack.pop_back(); }

void internal::check_unregistered(const Module& m, std::vector<std::pair<const Module*, std::string>>& pending) {
  std::unordered_set<const Module*> tree;
  for (Module& x : m.modules()) tree.insert(&x);
  std::string list;
  size_t count = 0;
  for (auto& [ptr, type] : pending)
    if (!tree.count(ptr)) {
      list += (list.empty() ? "" : ", ") + type;
      ++count;
    }
  pending.clear();
  if (count == 0) return;
  nnkit::detail::throw_error(
      "[" + m.name() + "] " + std::to_string(count) + " module(s) created in its constructor were never registered (" +
      list + "). Unregistered modules are invisible to parameters(), to(), train()/eval() and state_dict(): register "
      "each with register_module(name, module), or keep a group in nn::ModuleList / nn::ModuleDict instead of a "
      "std::vector");
}

AllowModuleCreationInForward::AllowModuleCreationInForward() : prev_(allow_creation_in_forward) {
  allow_creation_in_forward = true;
}
AllowModuleCreationInForward::~AllowModuleCreationInForward() { allow_creation_in_forward = prev_; }

// ---- construction bookkeeping (nn::make) ----
namespace detail {
ConstructionScope::ConstructionScope() : parent(current_scope) { current_scope = this; }
ConstructionScope::~ConstructionScope() { current_scope = parent; }

void ConstructionScope::finish(Module& made, const std::function<Ptr<>()>& remake) {
  made.remake_ = remake;
  if (!created.empty()) {
    std::unordered_set<const Module*> tree;
    for (Module& m : made.modules()) tree.insert(&m);
    for (Module* c : created)
      if (!tree.count(c)) made.unregistered_.emplace_back(c, c->name());
  }
  // `made` was created while the enclosing constructor (if any) ran: it must be registered too.
  if (parent) parent->created.push_back(&made);
}
}  // namespace detail

Module::Module() {
  if (!call_stack.empty() && !allow_creation_in_forward) {
    const Module* running = call_stack.back();
    nnkit::detail::throw_error(
        "[nn::Module] a module was constructed inside the forward() of " + describe(running) +
        ". Build submodules in the constructor and register them (register_module), or use nn::functional for "
        "stateless operations; wrap the code in nn::AllowModuleCreationInForward if this is intended");
  }
  if (current_scope) {
    if (!current_scope->self)
      current_scope->self = this;
    else
      current_scope->created.push_back(this);
  }
}

Module::~Module() {
  for (auto* s = current_scope; s; s = s->parent) std::erase(s->created, this);
}

std::string Module::name() const { return demangle(typeid(*this).name()); }

void Module::fail(const std::string& message) const {
  nnkit::detail::throw_error("[" + name() + "] " + describe(this) + ": " + message);
}

// ---- registration ----
Tensor Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_name(name, "register_parameter", *this);
  NNKIT_CHECK(!parameters_.contains(name) && !buffers_.contains(name) && !children_.contains(name),
              "[register_parameter] ", this->name(), ": attribute '", name, "' already exists");
  NNKIT_CHECK(std::find(call_stack.begin(), call_stack.end(), this) == call_stack.end(), "[register_parameter] ",
              this->name(), ": parameter '", name, "' registered inside forward(); build structure in the constructor");
  if (t.defined()) {
    NNKIT_CHECK(t.is_leaf(), "[register_parameter] ", this->name(), ": parameter '", name,
                "' has autograd history (it was computed from other tensors); register a leaf, e.g. x.detach()");
    if (t.is_floating_point()) t.requires_grad_(requires_grad);
    else
      NNKIT_CHECK(!requires_grad, "[register_parameter] ", this->name(), ": parameter '", name, "' has dtype ",
                  t.dtype(), "; only floating-point parameters can require grad (pass requires_grad=false)");
  }
  parameters_.insert(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t, bool persistent) {
  check_name(name, "register_buffer", *this);
  NNKIT_CHECK(!parameters_.contains(name) && !buffers_.contains(name) && !children_.contains(name),
              "[register_buffer] ", this->name(), ": attribute '", name, "' already exists");
  buffers_.insert(name, t);
  if (!persistent) non_persistent_.push_back(name);
  return t;
}

bool Module::is_persistent_buffer(const std::string& name) const {
  return buffers_.contains(name) &&
         std::find(non_persistent_.begin(), non_persistent_.end(), name) == non_persistent_.end();
}

void Module::register_module_impl(const std::string& name, Ptr<> module) {
  check_name(name, "register_module", *this);
  NNKIT_CHECK(module, "[register_module] ", this->name(), ": module '", name,
              "' is empty (an empty nn::Ptr). An empty slot is not a module: use nn::Identity() "
              "(nn::make<nn::Identity>()) where nothing should happen");
  NNKIT_CHECK(!parameters_.contains(name) && !buffers_.contains(name) && !children_.contains(name),
              "[register_module] ", this->name(), ": attribute '", name,
              "' already exists (use replace_module to swap a child)");
  for (Module& m : module->modules())
    NNKIT_CHECK(&m != this, "[register_module] ", this->name(), ": registering '", name,
                "' would make a module its own descendant (a cycle)");
  children_.insert(name, std::move(module));
}

void Module::replace_module_impl(const std::string& name, Ptr<> module) {
  NNKIT_CHECK(children_.contains(name), "[replace_module] ", this->name(), " has no child module '", name,
              "' (children: ", [&] {
                std::string s;
                for (auto& k : children_.keys()) s += (s.empty() ? "" : ", ") + k;
                return s;
              }(), ")");
  NNKIT_CHECK(module, "[replace_module] ", this->name(), ": replacement for '", name,
              "' is empty; use nn::Identity() for a no-op");
  children_.at(name) = std::move(module);
}

Ptr<> Module::unregister_module(const std::string& name) {
  NNKIT_CHECK(children_.contains(name), "[unregister_module] ", this->name(), " has no child module '", name, "'");
  return children_.erase(name);
}

// ---- enumeration ----
std::vector<NamedModule> Module::named_modules(const std::string& prefix, bool include_self) const {
  std::vector<NamedModule> out;
  std::unordered_set<const Module*> seen;
  std::function<void(const Module&, const std::string&)> visit = [&](const Module& m, const std::string& p) {
    if (!seen.insert(&m).second) return;
    out.push_back({p, const_cast<Module&>(m)});
    for (auto& [n, c] : m.children_) visit(*c, p.empty() ? n : p + "." + n);
  };
  if (include_self) {
    visit(*this, prefix);
  } else {
    seen.insert(this);
    for (auto& [n, c] : children_) visit(*c, prefix.empty() ? n : prefix + "." + n);
  }
  return out;
}

std::vector<std::reference_wrapper<Module>> Module::modules(bool include_self) const {
  std::vector<std::reference_wrapper<Module>> out;
  for (auto& nm : named_modules("", include_self)) out.emplace_back(nm.module);
  return out;
}

std::vector<NamedModule> Module::named_children() const {
  std::vector<NamedModule> out;
  std::unordered_set<const Module*> seen;
  for (auto& [n, c] : children_)
    if (seen.insert(c.get()).second) out.push_back({n, *c});
  return out;
}

std::vector<std::reference_wrapper<Module>> Module::children() const {
  std::vector<std::reference_wrapper<Module>> out;
  for (auto& nc : named_children()) out.emplace_back(nc.module);
  return out;
}

namespace {
OrderedDict<Tensor> named_tensors(const Module& root, bool recurse, bool buffers) {
  OrderedDict<Tensor> out;
  std::unordered_set<const TensorImpl*> seen;
  auto add = [&](const Module& m, const std::string& prefix) {
    const auto& reg = buffers ? m.buffer_registry() : m.parameter_registry();
    for (auto& [n, t] : reg) {
      if (!t.defined() || !seen.insert(t.impl()).second) continue;
      out.insert(prefix.empty() ? n : prefix + "." + n, t);
    }
  };
  if (!recurse) {
    add(root, "");
    return out;
  }
  for (auto& nm : root.named_modules()) add(nm.module, nm.name);
  return out;
}
}  // namespace

OrderedDict<Tensor> Module::named_parameters(bool recurse) const { return named_tensors(*this, recurse, false); }
OrderedDict<Tensor> Module::named_buffers(bool recurse) const { return named_tensors(*this, recurse, true); }
TensorList Module::parameters(bool recurse) const { return named_parameters(recurse).values(); }
TensorList Module::buffers(bool recurse) const { return named_buffers(recurse).values(); }

Module& Module::get_submodule(const std::string& path) { return *get_submodule_ptr(path); }

Ptr<> Module::get_submodule_ptr(const std::string& path) {
  NNKIT_CHECK(!path.empty(), "[get_submodule] empty path; the module itself is not a submodule");
  Module* m = this;
  Ptr<> found;
  std::string walked;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    Ptr<>* c = m->children_.find(part);
    if (!c) {
      std::string avail;
      for (auto& k : m->children_.keys()) avail += (avail.empty() ? "" : ", ") + k;
      nnkit::detail::throw_error("[get_submodule] " + name() + " has no submodule '" + path + "': " +
                                 (walked.empty() ? std::string("the module") : "'" + walked + "'") + " (" + m->name() +
                                 ") has no child '" + part + "' (children: " + (avail.empty() ? "none" : avail) + ")");
    }
    found = *c;
    m = c->get();
    walked += (walked.empty() ? "" : ".") + part;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return found;
}

void Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& c : children()) c.get().apply(fn);
  fn(*this);
}

// ---- state ----
void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::move_tensors(std::optional<Device> device, std::optional<Dtype> dtype) {
  NoGradGuard no_grad;
  std::unordered_set<const TensorImpl*> seen;
  auto move = [&](const Tensor& t) {
    if (!t.defined() || !seen.insert(t.impl()).second) return;
    Device dev = device.value_or(t.device());
    Dtype dt = dtype && t.is_floating_point() ? *dtype : t.dtype();
    if (dev == t.device() && dt == t.dtype()) return;
    Tensor moved = t.detach().to(dev, dt).contiguous();
    if (moved.is_same(t)) moved = moved.clone();
    // Re-point the existing impl so every handle to this parameter sees the move.
    t.impl()->set_storage(moved.impl()->storage(), moved.sizes(), moved.strides(), moved.storage_offset(),
                          moved.dtype());
    const Tensor& g = t.grad();
    if (g.defined()) {
      Tensor gm = g.detach().to(dev, dt).contiguous();
      g.impl()->set_storage(gm.impl()->storage(), gm.sizes(), gm.strides(), gm.storage_offset(), gm.dtype());
    }
  };
  for (Module& m : modules()) {
    for (auto& [n, t] : m.parameters_) move(t);
    for (auto& [n, t] : m.buffers_) move(t);
  }
}

void Module::to(Device device) { move_tensors(device, std::nullopt); }
void Module::to(Dtype dtype) {
  NNKIT_CHECK(is_floating_point(dtype), "[to] nn::Module::to only accepts floating point dtypes, but got ", dtype);
  move_tensors(std::nullopt, dtype);
}
void Module::to(Device device, Dtype dtype) {
  NNKIT_CHECK(is_floating_point(dtype), "[to] nn::Module::to only accepts floating point dtypes, but got ", dtype);
  move_tensors(device, dtype);
}

void Module::zero_grad(bool set_to_none) {
  for (Tensor& p : parameters()) {
    if (!p.grad().defined()) continue;
    if (set_to_none) {
      p.mutable_grad() = Tensor();
    } else {
      Tensor& g = p.mutable_grad();
      if (g.grad_fn()) g = g.detach();
      NoGradGuard ng;
      g.zero_();
    }
  }
}

void Module::requires_grad_(bool rg) {
  for (Tensor& p : parameters())
    if (p.is_floating_point()) p.requires_grad_(rg);
}

void Module::reset_parameters() {
  for (auto& c : children()) c.get().reset_parameters();
}

Ptr<> Module::clone() const {
  NNKIT_CHECK(remake_, "[clone] ", name(),
              " was not created by nn::make<", name(), ">(...), which records how to rebuild it; create it that way to clone it");
  Ptr<> copy = remake_();
  NoGradGuard ng;
  auto copy_all = [&](const OrderedDict<Tensor>& src, const OrderedDict<Tensor>& dst, const char* what) {
    NNKIT_CHECK(src.size() == dst.size(), "[clone] ", name(), ": the rebuilt module has ", dst.size(), " ", what,
                " but the original has ", src.size(),
                " (was the structure changed after construction, e.g. by replace_module?)");
    for (auto& [n, t] : src) {
      const Tensor* d = dst.find(n);
      NNKIT_CHECK(d && d->sizes() == t.sizes(), "[clone] ", name(), ": ", what, " '", n,
                  "' differs between the original and the rebuilt module");
      Tensor c = t.detach().clone();
      d->impl()->set_storage(c.impl()->storage(), c.sizes(), c.strides(), c.storage_offset(), c.dtype());
      if (t.is_floating_point()) const_cast<Tensor&>(*d).requires_grad_(t.requires_grad());
    }
  };
  copy_all(named_parameters(), copy->named_parameters(), "parameters");
  copy_all(named_buffers(), copy->named_buffers(), "buffers");
  auto src_mods = named_modules(), dst_mods = copy->named_modules();
  for (size_t i = 0; i < std::min(src_mods.size(), dst_mods.size()); ++i)
    dst_mods[i].module.training_ = src_mods[i].module.training_;
  return copy;
}

// ---- printing ----
std::string Module::repr() const {
  // PyTorch's Module.__repr__: extra_repr lines, then "(name): child" lines indented by 2.
  std::vector<std::string> extra_lines, child_lines;
  std::string extra = extra_repr();
  if (!extra.empty()) {
    std::stringstream ss(extra);
    std::string line;
    while (std::getline(ss, line)) extra_lines.push_back(line);
  }
  for (auto& [n, c] : children_) {
    std::string s = c->repr();
    std::string indented;
    size_t start = 0;
    bool first = true;
    while (true) {
      size_t nl = s.find('\n', start);
      std::string line = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      indented += first ? line : "\n  " + line;
      first = false;
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    child_lines.push_back("(" + n + "): " + indented);
  }
  std::string out = name() + "(";
  std::vector<std::string> lines = extra_lines;
  lines.insert(lines.end(), child_lines.begin(), child_lines.end());
  if (!lines.empty()) {
    if (extra_lines.size() == 1 && child_lines.empty()) {
      out += extra_lines[0];
    } else {
      out += "\n  ";
      for (size_t i = 0; i < lines.size(); ++i) out += (i ? "\n  " : "") + lines[i];
      out += "\n";
    }
  }
  return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Module& m) { return os << m.repr(); }

std::string py_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  std::string s(buf, r.ptr);
  // Python switches to exponent notation below 1e-4 and from 1e16; to_chars picks the shorter.
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string internal::pair_str(functional::Pair p) {
  return "(" + std::to_string(p.h) + ", " + std::to_string(p.w) + ")";
}

// ---- computation ----
// forward and forward_list default to each other, so a module overrides whichever fits; this
// marks the module whose forward() is already falling back to forward_list on this thread.
namespace {
NNKIT_TLS thread_local const Module* falling_back_to_list = nullptr;
}

Tensor Module::forward(const Tensor& x) {
  if (falling_back_to_list == this)
    fail("neither forward(const Tensor&) nor forward_list(const TensorList&) is implemented; override "
         "forward(const Tensor&) for a single input, or forward_list(const TensorList&) for several");
  const Module* saved = std::exchange(falling_back_to_list, this);
  TensorList out;
  try {
    out = forward_list(TensorList{x});
  } catch (...) {
    falling_back_to_list = saved;
    throw;
  }
  falling_back_to_list = saved;
  if (out.size() != 1) fail("returned " + std::to_string(out.size()) + " outputs; call it with a TensorList to get them all");
  return std::move(out[0]);
}

TensorList Module::forward_list(const TensorList& inputs) {
  if (falling_back_to_list == this)
    fail("neither forward(const Tensor&) nor forward_list(const TensorList&) is implemented; override "
         "forward(const Tensor&) for a single input, or forward_list(const TensorList&) for several");
  if (inputs.size() != 1)
    fail("called with " + std::to_string(inputs.size()) +
         " inputs but only forward(const Tensor&) is implemented; override forward_list for several inputs");
  return {forward(inputs[0])};
}

TensorList Module::operator()(const TensorList& inputs) { return call(inputs); }

namespace {
const Tensor* reference_parameter(const OrderedDict<Tensor>& parameters) {
  for (auto& [n, p] : parameters)
    if (p.defined() && p.is_floating_point()) return &p;
  return nullptr;
}
}  // namespace

void Module::check_input(const Tensor& x, size_t i) const {
  if (!x.defined() || !x.is_floating_point()) return;
  const Tensor* ref = reference_parameter(parameters_);
  if (!ref) return;
  if (x.device() != ref->device())
    fail("input " + std::to_string(i) + " is on " + x.device().str() + " but the module's parameters are on " +
         ref->device().str() + "; move the input with .to(device) or the module with ->to(device)");
  if (x.dtype() != ref->dtype())
    fail("input " + std::to_string(i) + " has dtype " + std::string(dtype_name(x.dtype())) +
         " but the module's parameters have dtype " + std::string(dtype_name(ref->dtype())) +
         "; convert the input with .to(dtype) or the module with ->to(dtype)");
}

void Module::check_inputs(const TensorList& inputs) const {
  for (size_t i = 0; i < inputs.size(); ++i) check_input(inputs[i], i);
}

}  // namespace nnkit::nn
