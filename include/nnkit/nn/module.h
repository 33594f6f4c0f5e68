#pragma once
// nn::Module: the base of every layer and model. A module owns ordered registries of
// parameters, buffers and child modules; calling it (m(x), or through an nn::Ptr) runs the
// forward pre-hooks, forward() and the forward hooks, and wires full backward hooks.
//
// Contract (each part is checked and tested):
//  - Structure is built in the constructor; forward() only computes. Registering an empty
//    module, a duplicate name, an empty name or a name containing '.' is an nnkit::Error.
//  - A module constructed inside any module's forward() is an error (see
//    AllowModuleCreationInForward); a module constructed in another module's constructor (via
//    nn::make) and never registered is reported when the parent is first called.
//  - Names are PyTorch's: named_parameters(), named_buffers(), state_dict() keys match the
//    equivalent PyTorch model.
#include <functional>
#include <optional>
#include <iosfwd>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "nnkit/core/handle.h"
#include "nnkit/core/tensor.h"
#include "nnkit/nn/ordered_dict.h"
#include "nnkit/serialize/state_dict.h"

namespace nnkit::nn {

using nnkit::Tensor;
using nnkit::TensorList;
class Module;

using HookHandle = nnkit::RemovableHandle;
using ScopedHook = nnkit::ScopedHook;

// May replace the inputs (assign to its elements or the whole list).
using ForwardPreHook = std::function<void(Module& module, TensorList& inputs)>;
// May replace the outputs.
using ForwardHook = std::function<void(Module& module, const TensorList& inputs, TensorList& outputs)>;
// Sees the gradients w.r.t. the module's outputs before they flow into it; may replace them.
using BackwardPreHook = std::function<void(Module& module, TensorList& grad_outputs)>;
// Sees the gradients w.r.t. the module's inputs and outputs; may replace grad_inputs.
using BackwardHook = std::function<void(Module& module, TensorList& grad_inputs, const TensorList& grad_outputs)>;

// A shared, owning handle to a module: p(x) calls it (hooks run), p->member reaches it.
// nn::Ptr<> (= Ptr<Module>) holds any module.
template <typename M = Module>
class Ptr {
 public:
  Ptr() = default;
  Ptr(std::nullptr_t) {}  // NOLINT
  explicit Ptr(std::shared_ptr<M> p) : p_(std::move(p)) {}
  template <typename U>
    requires std::is_convertible_v<U*, M*>
  Ptr(const Ptr<U>& o) : p_(o.shared()) {}  // NOLINT: upcast like a pointer

  M* operator->() const { return checked(); }
  M& operator*() const { return *checked(); }
  M* get() const { return p_.get(); }
  const std::shared_ptr<M>& shared() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }
  bool is_empty() const { return p_ == nullptr; }

  Tensor operator()(const Tensor& x) const;
  TensorList operator()(const TensorList& xs) const;
  template <typename... T>
    requires(sizeof...(T) >= 2 && (std::is_convertible_v<const T&, const Tensor&> && ...))
  TensorList operator()(const T&... xs) const {
    return (*this)(TensorList{xs...});
  }

  // Downcast; an empty Ptr if the module is not a T.
  template <typename T>
  Ptr<T> as() const {
    return Ptr<T>(std::dynamic_pointer_cast<T>(p_));
  }
  friend bool operator==(const Ptr& a, const Ptr& b) { return a.p_ == b.p_; }

 private:
  M* checked() const {
    if (!p_) [[unlikely]]
      empty_error();
    return p_.get();
  }
  [[noreturn]] static void empty_error();
  std::shared_ptr<M> p_;
};

[[noreturn]] void throw_empty_ptr();
template <typename M>
void Ptr<M>::empty_error() {
  throw_empty_ptr();
}

struct NamedModule {
  std::string name;
  Module& module;
};

namespace detail {
template <typename M, typename = void>
struct options_of {
  using type = void;
};
template <typename M>
struct options_of<M, std::void_t<typename M::Options>> {
  using type = typename M::Options;
};

// Bookkeeping of nn::make: which modules were created while another module's constructor ran.
struct ConstructionScope {
  ConstructionScope();
  ~ConstructionScope();
  ConstructionScope(const ConstructionScope&) = delete;
  ConstructionScope& operator=(const ConstructionScope&) = delete;
  // Called by nn::make after construction: checks the modules created here are registered
  // somewhere under `made`, and tells the enclosing scope about `made`.
  void finish(Module& made, const std::function<Ptr<>()>& remake);
  Module* self = nullptr;
  std::vector<Module*> created;
  ConstructionScope* parent = nullptr;
};
}  // namespace detail

// Creates a module owned by an nn::Ptr. Prefer it to constructing modules directly: it records
// how to rebuild the module (for clone()) and checks that every module created by the
// constructor was registered.
template <typename M, typename... Args>
  requires(!(sizeof...(Args) == 1 && (std::is_same_v<std::remove_cvref_t<Args>, typename detail::options_of<M>::type> && ...)))
Ptr<M> make(Args&&... args);
template <typename M>
Ptr<M> make(const typename detail::options_of<M>::type& options);

// A callable that makes a module of type M, with leading constructor arguments bound:
//   nn::factory<nn::GroupNorm>(32)  -> f(channels) makes GroupNorm(32, channels)
template <typename M, typename... Bound>
auto factory(Bound... bound) {
  return [=](auto&&... rest) -> Ptr<> { return Ptr<>(make<M>(bound..., std::forward<decltype(rest)>(rest)...)); };
}
// Factories for substitutable components (the module guide's norm_layer / activation).
using NormFactory = std::function<Ptr<>(int64_t num_features)>;
using ActivationFactory = std::function<Ptr<>()>;

class Module : public std::enable_shared_from_this<Module> {
 public:
  Module();
  virtual ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The type's name, as PyTorch prints it ("Conv2d", "ResNetBlock").
  virtual std::string name() const;

  // ---- computation ----
  // Override one of these. forward(Tensor) is the common single-input form; forward_list is
  // the general form (several inputs and/or outputs). The default forward_list calls forward.
  virtual Tensor forward(const Tensor& x);
  virtual TensorList forward_list(const TensorList& inputs);
  // Calling runs hooks around forward. Use these (or an nn::Ptr) rather than forward().
  Tensor operator()(const Tensor& x);
  TensorList operator()(const TensorList& inputs);
  template <typename... T>
    requires(sizeof...(T) >= 2 && (std::is_convertible_v<const T&, const Tensor&> && ...))
  TensorList operator()(const T&... xs) {
    return (*this)(TensorList{xs...});
  }

  // ---- registration ----
  // Returns the registered tensor (a handle to the same data; keep it as a member).
  Tensor register_parameter(const std::string& name, Tensor tensor, bool requires_grad = true);
  Tensor register_buffer(const std::string& name, Tensor tensor, bool persistent = true);
  template <typename M>
  Ptr<M> register_module(const std::string& name, Ptr<M> module) {
    register_module_impl(name, Ptr<>(module));
    return module;
  }
  template <typename M, typename... Args>
    requires(!(sizeof...(Args) == 1 &&
               (std::is_same_v<std::remove_cvref_t<Args>, typename detail::options_of<M>::type> && ...)) &&
             !(sizeof...(Args) == 1 && (std::is_base_of_v<Ptr<M>, std::remove_cvref_t<Args>> && ...)))
  Ptr<M> register_module(const std::string& name, Args&&... args) {
    return register_module(name, make<M>(std::forward<Args>(args)...));
  }
  template <typename M>
  Ptr<M> register_module(const std::string& name, const typename detail::options_of<M>::type& options) {
    return register_module(name, make<M>(options));
  }
  // Replaces a registered child, keeping its position.
  template <typename M>
  Ptr<M> replace_module(const std::string& name, Ptr<M> module) {
    replace_module_impl(name, Ptr<>(module));
    return module;
  }
  // Removes a child and returns it.
  Ptr<> unregister_module(const std::string& name);

  // ---- enumeration (works inside the constructor) ----
  TensorList parameters(bool recurse = true) const;
  OrderedDict<Tensor> named_parameters(bool recurse = true) const;
  TensorList buffers(bool recurse = true) const;
  OrderedDict<Tensor> named_buffers(bool recurse = true) const;
  std::vector<std::reference_wrapper<Module>> children() const;
  std::vector<NamedModule> named_children() const;
  std::vector<std::reference_wrapper<Module>> modules(bool include_self = true) const;
  std::vector<NamedModule> named_modules(const std::string& prefix = "", bool include_self = true) const;
  // The registries themselves (this module only).
  const OrderedDict<Tensor>& parameter_registry() const { return parameters_; }
  const OrderedDict<Tensor>& buffer_registry() const { return buffers_; }
  const OrderedDict<Ptr<>>& child_registry() const { return children_; }
  bool is_persistent_buffer(const std::string& name) const;
  // A submodule by dotted path ("layer1.0.conv1"); errors name the missing part.
  Module& get_submodule(const std::string& path);
  Ptr<> get_submodule_ptr(const std::string& path);
  void apply(const std::function<void(Module&)>& fn);
  template <typename T>
  T* as() {
    return dynamic_cast<T*>(this);
  }
  template <typename T>
  const T* as() const {
    return dynamic_cast<const T*>(this);
  }

  // ---- state ----
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Moves (converts) parameters and buffers in place: tensor handles held elsewhere stay valid.
  void to(Device device);
  void to(Dtype dtype);  // floating-point parameters and buffers only, as in PyTorch
  void to(Device device, Dtype dtype);
  void zero_grad(bool set_to_none = true);
  void requires_grad_(bool requires_grad = true);
  // Re-initializes this module's parameters. The default resets every child.
  virtual void reset_parameters();
  // A deep copy: same structure, copied parameters and buffers, same training mode. Needs the
  // module to have been created by nn::make (which records how to rebuild it).
  Ptr<> clone() const;

  // ---- state dicts ----
  // Parameters and persistent buffers with PyTorch's keys.
  StateDict state_dict() const;
  // Validates every key, shape and dtype first and copies only if all fit: a failed load throws
  // an nnkit::Error listing every problem and changes nothing. Values are copied into the
  // existing tensors (on their device), so handles stay valid. Non-strict loads skip missing and
  // unexpected keys and report them; a shape or dtype mismatch is an error in both modes.
  LoadResult load_state_dict(const StateDict& state, const LoadOptions& options = {});

  // ---- printing (PyTorch's repr) ----
  virtual std::string extra_repr() const { return {}; }
  std::string repr() const;

  // ---- hooks ----
  HookHandle register_forward_pre_hook(ForwardPreHook hook, bool prepend = false);
  HookHandle register_forward_hook(ForwardHook hook, bool prepend = false);
  HookHandle register_full_backward_pre_hook(BackwardPreHook hook, bool prepend = false);
  HookHandle register_full_backward_hook(BackwardHook hook, bool prepend = false);

  struct Hooks;  // private storage, public for the implementation's helpers

 protected:
  // For containers: register under a computed name without the user-name checks' wording.
  void register_module_impl(const std::string& name, Ptr<> module);
  void replace_module_impl(const std::string& name, Ptr<> module);
  OrderedDict<Ptr<>>& mutable_children() { return children_; }
  // Throws naming this module's path (as seen from the module being called) and the problem.
  [[noreturn]] void fail(const std::string& message) const;

 private:
  friend struct detail::ConstructionScope;
  friend class ModuleAccess;
  TensorList call(TensorList inputs);
  void check_inputs(const TensorList& inputs) const;
  void check_input(const Tensor& x, size_t index) const;
  void move_tensors(std::optional<Device> device, std::optional<Dtype> dtype);

  OrderedDict<Tensor> parameters_;
  OrderedDict<Tensor> buffers_;
  std::vector<std::string> non_persistent_;
  OrderedDict<Ptr<>> children_;
  bool training_ = true;
  std::shared_ptr<Hooks> hooks_;
  std::function<Ptr<>()> remake_;                // set by nn::make
  std::vector<std::pair<const Module*, std::string>> unregistered_;  // found by nn::make
};

std::ostream& operator<<(std::ostream& os, const Module& m);
// Python's repr of a float, for extra_repr: shortest round-trip form, "1e-05", "0.1", "1.0".
std::string py_float(double v);

// Allows constructing modules inside forward() for its scope (e.g. a lazily built cache).
class AllowModuleCreationInForward {
 public:
  AllowModuleCreationInForward();
  ~AllowModuleCreationInForward();
  AllowModuleCreationInForward(const AllowModuleCreationInForward&) = delete;
  AllowModuleCreationInForward& operator=(const AllowModuleCreationInForward&) = delete;

 private:
  bool prev_;
};

// Hooks that apply to every module (PyTorch's register_module_forward_hook & co).
HookHandle register_module_forward_pre_hook(ForwardPreHook hook);
HookHandle register_module_forward_hook(ForwardHook hook);
HookHandle register_module_full_backward_pre_hook(BackwardPreHook hook);
HookHandle register_module_full_backward_hook(BackwardHook hook);

// ---- templates ----
template <typename M>
Tensor Ptr<M>::operator()(const Tensor& x) const {
  return (*checked())(x);
}
template <typename M>
TensorList Ptr<M>::operator()(const TensorList& xs) const {
  return (*checked())(xs);
}

namespace detail {
// clone() rebuilds a module from its recorded constructor arguments; module and tensor
// arguments are copied too, so the copy shares nothing with the original. An options struct
// that holds tensors gets the same treatment from a clone_arg overload in its own namespace
// (found by argument-dependent lookup; see functional::CrossEntropyOptions).
template <typename T>
const T& clone_arg(const T& v) {
  return v;
}
template <typename X>
Ptr<X> clone_arg(const Ptr<X>& p) {
  return p ? p->clone().template as<X>() : p;
}
inline Tensor clone_arg(const Tensor& t) {
  if (!t.defined()) return t;
  Tensor c = t.detach().clone();
  if (t.requires_grad()) c.requires_grad_(true);
  return c;
}
template <typename T>
decltype(auto) clone_any(const T& v) {
  return clone_arg(v);  // unqualified: ADL finds overloads next to the argument's type
}
template <typename M, typename Make>
Ptr<M> make_with_scope(Make&& construct, std::function<Ptr<>()> remake) {
  ConstructionScope scope;
  Ptr<M> p(construct());
  scope.finish(*p, remake);
  return p;
}
}  // namespace detail

template <typename M, typename... Args>
  requires(!(sizeof...(Args) == 1 && (std::is_same_v<std::remove_cvref_t<Args>, typename detail::options_of<M>::type> && ...)))
Ptr<M> make(Args&&... args) {
  static_assert(std::is_base_of_v<Module, M>, "nn::make<M>: M must derive from nn::Module");
  std::function<Ptr<>()> remake;
  if constexpr ((std::is_copy_constructible_v<std::decay_t<Args>> && ...))
    remake = [... a = std::decay_t<Args>(args)]() -> Ptr<> { return Ptr<>(make<M>(detail::clone_any(a)...)); };
  return detail::make_with_scope<M>([&] { return std::make_shared<M>(std::forward<Args>(args)...); }, std::move(remake));
}
template <typename M>
Ptr<M> make(const typename detail::options_of<M>::type& options) {
  static_assert(std::is_base_of_v<Module, M>, "nn::make<M>: M must derive from nn::Module");
  return detail::make_with_scope<M>([&] { return std::make_shared<M>(options); },
                                    [options]() -> Ptr<> { return Ptr<>(make<M>(options)); });
}

}  // namespace nnkit::nn
