#pragma once
// Custom autograd functions: a new differentiable op written in user code, with LibTorch's
// torch::autograd::Function API (Function<MyFn>, AutogradContext, MyFn::apply). See
// docs/custom-ops.md and examples/custom_function.cpp.

//   struct MulConst : nnkit::autograd::Function<MulConst> {
//     static Tensor forward(AutogradContext* ctx, const Tensor& x, double c) {
//       ctx->saved_data["c"] = c;
//       return x * c;
//     }
//     static TensorList backward(AutogradContext* ctx, TensorList grad_outputs) {
//       return {grad_outputs[0] * ctx->saved_data["c"].toDouble(), Tensor()};  // one per forward argument
//     }
//   };
//   Tensor y = MulConst::apply(x, 2.0);
//
// forward runs under NoGradGuard and returns a Tensor or a TensorList. When grad mode is on and
// a Tensor argument requires grad, the outputs get a CppNode<MyFn> as grad_fn; its backward
// gets one gradient per output (zeros where none flowed, unless set_materialize_grads(false))
// and must return one per forward argument (undefined for non-Tensor arguments and inputs
// without a gradient). Written with tensor ops, backward is itself differentiable
// (create_graph=true gives higher-order gradients).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "nnkit/autograd/grad_mode.h"
#include "nnkit/autograd/node.h"
#include "nnkit/core/tensor.h"

namespace nnkit::autograd {

// A value kept in AutogradContext::saved_data: none, int64, double, bool, Tensor, string or an
// int64 list (a Shape), with LibTorch's IValue accessors. A wrong accessor is an nnkit::Error.
class IValue {
 public:
  IValue() = default;
  // Implicit, so that `ctx->saved_data["k"] = value;` works. Any integer (not bool) is stored
  // as int64, any floating-point number as double, a Shape as an int64 list.
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  IValue(T v) : v_(static_cast<int64_t>(v)) {}
  template <typename T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  IValue(T v) : v_(static_cast<double>(v)) {}
  IValue(bool v) : v_(v) {}
  IValue(Tensor v) : v_(std::move(v)) {}
  IValue(std::string v) : v_(std::move(v)) {}
  IValue(const char* v) : v_(std::string(v)) {}
  IValue(std::vector<int64_t> v) : v_(std::move(v)) {}
  IValue(const Shape& v) : v_(std::vector<int64_t>(v.begin(), v.end())) {}

  bool isNone() const { return v_.index() == 0; }
  bool isInt() const { return std::holds_alternative<int64_t>(v_); }
  bool isDouble() const { return std::holds_alternative<double>(v_); }
  bool isBool() const { return std::holds_alternative<bool>(v_); }
  bool isTensor() const { return std::holds_alternative<Tensor>(v_); }
  bool isString() const { return std::holds_alternative<std::string>(v_); }
  bool isIntList() const { return std::holds_alternative<std::vector<int64_t>>(v_); }

  int64_t toInt() const;
  // An int converts to double, as in LibTorch's toScalar; anything else must be a double.
  double toDouble() const;
  bool toBool() const;
  const Tensor& toTensor() const;
  const std::string& toStringRef() const;
  const std::vector<int64_t>& toIntVector() const;
  Shape toShape() const { return Shape(toIntVector()); }
  // "None", "int", "double", "bool", "Tensor", "string" or "int[]".
  const char* type_name() const;

 private:
  std::variant<std::monostate, int64_t, double, bool, Tensor, std::string, std::vector<int64_t>> v_;
};

namespace function_detail {
struct ContextState;
class CppNodeBase;
}  // namespace function_detail

// What forward hands to backward (LibTorch's AutogradContext). One per apply() call, owned by
// the graph's node.
class AutogradContext {
 public:
  AutogradContext();
  ~AutogradContext();
  AutogradContext(const AutogradContext&) = delete;
  AutogradContext& operator=(const AutogradContext&) = delete;

  // Non-tensor data for backward. Keep tensors you need in backward in save_for_backward (a
  // forward output stored here makes a reference cycle and skips the in-place check).
  std::unordered_map<std::string, IValue> saved_data;

  // Saves tensors (inputs, outputs or intermediates) for backward; call it at most once, in
  // forward. Each records its version: get_saved_variables() fails if it changed in place.
  void save_for_backward(TensorList to_save);
  // The tensors given to save_for_backward. Outputs come back with their grad_fn under
  // create_graph, so a formula using them is differentiable.
  TensorList get_saved_variables() const;
  // In forward: these inputs were modified in place; each must be returned as an output (it
  // then gets this function as its grad_fn, as an in-place op's output does).
  void mark_dirty(const TensorList& inputs);
  // In forward: these outputs get no gradient (e.g. indices); backward still receives a slot
  // for each (zeros). Non-floating outputs are never differentiable.
  void mark_non_differentiable(const TensorList& outputs);
  // Whether backward receives zeros (true, the default) or undefined tensors for outputs
  // that no gradient reached.
  void set_materialize_grads(bool value);
  // Whether the i-th Tensor argument of forward (counting Tensor arguments only, as in
  // LibTorch: a TensorList counts each element, an empty std::optional<Tensor> none) needs a
  // gradient. Usable in forward too.
  bool needs_input_grad(size_t tensor_index) const;

 private:
  friend class function_detail::CppNodeBase;
  std::unique_ptr<function_detail::ContextState> state_;
};

namespace function_detail {

/* The non-template part of CppNode<T> (src/autograd/custom_function.cpp). */
class CppNodeBase : public Node {
 public:
  std::string name() const final { return name_; }
  const std::string& name_ref() const { return name_; }
  TensorList apply(TensorList&& grad_outputs) final;
  void release_variables() final;
  AutogradContext ctx;

  /* Used by Function<T>::apply: records the arguments (is_tensor has one entry per forward
     argument, tensor_inputs the Tensor ones) and connects the edges when a gradient is needed.
     Returns whether it is. */
  bool begin(std::vector<bool> is_tensor, const TensorList& tensor_inputs, const std::shared_ptr<Node>& self);
  /* Gives the outputs their history and saves what forward asked for. */
  TensorList finish(TensorList outputs, const std::shared_ptr<Node>& self, bool executable);

 protected:
  explicit CppNodeBase(std::string name) : name_(std::move(name)) {}
  virtual TensorList call_backward(TensorList grad_outputs) = 0;

 private:
  std::string name_;
};

/* "CppNode<MyFn>" from typeid(MyFn).name() (demangled; anonymous namespaces dropped). */
std::string cpp_node_name(const char* mangled);

template <class T>
class CppNode final : public CppNodeBase {
 public:
  CppNode() : CppNodeBase(node_name()) {}

 private:
  static const std::string& node_name() {
    static const std::string name = cpp_node_name(typeid(T).name());
    return name;
  }
  TensorList call_backward(TensorList grad_outputs) override {
    using R = decltype(T::backward(&ctx, std::move(grad_outputs)));
    if constexpr (std::is_convertible_v<R, Tensor>)
      return TensorList{Tensor(T::backward(&ctx, std::move(grad_outputs)))};
    else
      return TensorList(T::backward(&ctx, std::move(grad_outputs)));
  }
};

/* Sorts forward's arguments into Tensor inputs and the rest. */
struct ArgCollector {
  std::vector<bool>& is_tensor;
  TensorList& tensors;
  void operator()(const Tensor& t) {
    is_tensor.push_back(true);
    tensors.push_back(t);
  }
  void operator()(const std::optional<Tensor>& t) {
    const bool present = t.has_value() && t->defined();
    is_tensor.push_back(present);
    if (present) tensors.push_back(*t);
  }
  void operator()(const TensorList& list) {
    for (const Tensor& t : list) (*this)(t);
  }
  template <typename U>
  void operator()(const U&) {
    is_tensor.push_back(false);
  }
};

}  // namespace function_detail

// The return type of T::forward for these arguments.
template <typename T, typename... Args>
using forward_t = decltype(T::forward(static_cast<AutogradContext*>(nullptr), std::declval<Args>()...));

// Base class of a custom function (CRTP): MyFn::apply(args...) runs MyFn::forward and records
// MyFn::backward in the graph. Tensor, std::optional<Tensor> and TensorList arguments are
// inputs of the graph; anything else is passed through.
template <class T>
struct Function {
  template <typename X = T, typename... Args>
  static auto apply(Args&&... args) -> std::enable_if_t<std::is_same_v<X, T>, forward_t<X, Args...>> {
    using R = forward_t<X, Args...>;
    static_assert(std::is_same_v<R, Tensor> || std::is_same_v<R, TensorList>,
                  "nnkit::autograd::Function: forward must return nnkit::Tensor or nnkit::TensorList");
    auto node = std::make_shared<function_detail::CppNode<T>>();
    std::vector<bool> is_tensor;
    TensorList inputs;
    is_tensor.reserve(sizeof...(Args));
    function_detail::ArgCollector collect{is_tensor, inputs};
    (collect(args), ...);
    const bool executable = node->begin(std::move(is_tensor), inputs, node);
    R out;
    {
      NoGradGuard no_grad;
      out = T::forward(&node->ctx, std::forward<Args>(args)...);
    }
    if constexpr (std::is_same_v<R, Tensor>) {
      TensorList wrapped = node->finish(TensorList{std::move(out)}, node, executable);
      return std::move(wrapped[0]);
    } else {
      return node->finish(std::move(out), node, executable);
    }
  }
};

}  // namespace nnkit::autograd
