// Tensor's metadata accessors, element access, whole-tensor comparisons, autograd members.
#include <cmath>

#include "autograd/function.h"
#include "cpu/loops.h"
#include "ops/common.h"

namespace nnkit {

void Tensor::undefined_error() {
  detail::throw_error("[tensor] operation on an undefined tensor (a default-constructed nnkit::Tensor holds no data)");
}

int64_t Tensor::dim_out_of_range(const char* op, int64_t d) const {
  NNKIT_CHECK(dim() > 0, "[", op, "] dimension specified as ", d, " but tensor has no dimensions");
  detail::wrap_dim(d, dim(), op);  // throws with the valid range
  detail::throw_error(detail::concat("[", op, "] dimension ", d, " out of range"));
}
bool Tensor::is_alias_of(const Tensor& o) const {
  return defined() && o.defined() && impl()->storage().get() == o.impl()->storage().get();
}

double Tensor::item_double() const {
  NNKIT_CHECK(numel() == 1, "[item] a Tensor with ", numel(), " elements cannot be converted to a scalar");
  Tensor c = is_cpu() ? *this : to(Device::cpu());
  return detail::dispatch<detail::kAllTypes>(dtype(), "item", [&]<typename T>() { return double(*static_cast<const T*>(c.raw_data())); });
}
int64_t Tensor::item_int64() const {
  NNKIT_CHECK(numel() == 1, "[item] a Tensor with ", numel(), " elements cannot be converted to a scalar");
  Tensor c = is_cpu() ? *this : to(Device::cpu());
  return detail::dispatch<detail::kAllTypes>(dtype(), "item", [&]<typename T>() { return int64_t(*static_cast<const T*>(c.raw_data())); });
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = detach().to(Device::cpu(), dtype_of<T>).contiguous();
  const T* p = static_cast<const T*>(c.raw_data());
  return std::vector<T>(p, p + c.numel());
}
template <>
std::vector<bool> Tensor::to_vector<bool>() const {
  Tensor c = detach().to(Device::cpu(), kBool).contiguous();
  const bool* p = static_cast<const bool*>(c.raw_data());
  return std::vector<bool>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

bool equal(const Tensor& a, const Tensor& b) {
  detail::check_defined(a, "equal", "first operand");
  detail::check_defined(b, "equal", "second operand");
  if (a.sizes() != b.sizes()) return false;
  if (a.dtype() != b.dtype()) return false;
  Tensor ne = a.detach().ne(b.detach());
  return ne.numel() == 0 || ne.to(kInt64).sum().item<int64_t>() == 0;
}
bool Tensor::equal(const Tensor& o) const { return nnkit::equal(*this, o); }

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  detail::check_defined(a, "allclose", "first operand");
  detail::check_defined(b, "allclose", "second operand");
  Shape s = broadcast_shapes(a.sizes(), b.sizes(), "allclose");
  Tensor x = a.detach().to(Device::cpu(), kFloat64).expand(s).contiguous();
  Tensor y = b.detach().to(Device::cpu(), kFloat64).expand(s).contiguous();
  const double* px = x.data_ptr<double>();
  const double* py = y.data_ptr<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    double u = px[i], v = py[i];
    if (std::isnan(u) || std::isnan(v)) return false;
    if (u == v) continue;  // equal infinities
    if (!(std::abs(u - v) <= atol + rtol * std::abs(v))) return false;
  }
  return true;
}
bool Tensor::allclose(const Tensor& o, double rtol, double atol) const { return nnkit::allclose(*this, o, rtol, atol); }

// ---- autograd ----
bool Tensor::requires_grad() const { return autograd::requires_grad(*this); }

Tensor& Tensor::requires_grad_(bool rg) {
  auto* m = checked()->autograd();
  if (m && m->grad_fn) {
    NNKIT_CHECK(rg, "[requires_grad_] you can only change requires_grad flags of leaf tensors; use detach() to get a "
                    "tensor without history");
    return *this;
  }
  NNKIT_CHECK(!rg || is_floating_point(), "[requires_grad_] only floating-point tensors can require gradients, got ",
              dtype());
  if (!m && !rg) return *this;
  impl()->autograd_or_create().requires_grad = rg;
  return *this;
}

const Tensor& Tensor::grad() const {
  static const Tensor undefined;
  auto* m = checked()->autograd();
  return m ? m->grad : undefined;
}
Tensor& Tensor::mutable_grad() { return checked()->autograd_or_create().grad; }
void Tensor::set_grad(const Tensor& g) {
  if (g.defined()) {
    NNKIT_CHECK(g.sizes() == sizes(), "[set_grad] assigned grad has shape ", g.sizes(), " but the tensor has shape ",
                sizes());
    NNKIT_CHECK(g.dtype() == dtype() && g.device() == device(), "[set_grad] assigned grad has dtype ", g.dtype(),
                " on ", g.device(), " but the tensor has dtype ", dtype(), " on ", device());
  }
  checked()->autograd_or_create().grad = g;
}

const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<autograd::Node> none;
  auto* m = checked()->autograd();
  return m ? m->grad_fn : none;
}
uint32_t Tensor::output_nr() const {
  auto* m = checked()->autograd();
  return m ? m->output_nr : 0;
}
bool Tensor::is_leaf() const { return !grad_fn(); }

void Tensor::retain_grad() {
  NNKIT_CHECK(requires_grad(), "[retain_grad] can't retain_grad on a tensor that has requires_grad=false");
  if (is_leaf()) return;  // leaves keep .grad() anyway
  auto& meta = impl()->autograd_or_create();
  if (meta.retains_grad) return;
  meta.retains_grad = true;
  TensorImpl* raw = impl();  // the impl removes this hook in its destructor
  meta.grad_fn->set_retain_grad_hook(meta.output_nr, raw, [raw](const Tensor& g) {
    auto& m = raw->autograd_or_create();
    if (!m.grad.defined())
      m.grad = g.detach().clone();
    else
      m.grad = m.grad + g.detach();
    return Tensor();
  });
}
bool Tensor::retains_grad() const {
  auto* m = checked()->autograd();
  return m && m->retains_grad;
}

void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  autograd::backward({*this}, gradient.defined() ? TensorList{gradient} : TensorList{}, retain_graph, create_graph);
}

RemovableHandle Tensor::register_hook_impl(TensorHook hook) const {
  NNKIT_CHECK(requires_grad(), "[register_hook] cannot register a hook on a tensor that doesn't require gradient");
  auto& meta = impl()->autograd_or_create();
  if (meta.grad_fn) return meta.grad_fn->add_tensor_hook(meta.output_nr, std::move(hook));
  if (!meta.leaf_hooks) meta.leaf_hooks = std::make_shared<autograd::TensorHookList>();
  static std::atomic<uint64_t> next_key{1ull << 62};
  uint64_t key = next_key.fetch_add(1);
  meta.leaf_hooks->entries.push_back({key, 0, std::move(hook)});
  std::weak_ptr<autograd::TensorHookList> weak = meta.leaf_hooks;
  return RemovableHandle([weak, key] {
    if (auto list = weak.lock())
      std::erase_if(list->entries, [key](const autograd::TensorHookList::Entry& e) { return e.key == key; });
  });
}

}  // namespace nnkit
