// Containers (include/nnkit/nn/container.h); semantics from torch/nn/modules/container.py.
#include "nnkit/nn/container.h"

#include <sstream>

namespace nnkit::nn {

namespace {
int64_t wrap_index(int64_t index, size_t size, const char* what) {
  int64_t n = int64_t(size);
  NNKIT_CHECK(index >= -n && index < n, "[", what, "] index ", index, " is out of range (size ", n, ")");
  return index < 0 ? index + n : index;
}

std::string param_line(const std::string& key, const Tensor& p) {
  std::ostringstream os;
  os << "  (" << key << "): Parameter containing: [torch." << p.dtype() << " of size ";
  for (size_t i = 0; i < p.sizes().size(); ++i) os << (i ? "x" : "") << p.sizes()[i];
  os << (p.is_cuda() ? " (GPU " + std::to_string(p.device().index) + ")" : "") << "]";
  return os.str();
}
}  // namespace

// ---- Sequential ----
Sequential::Sequential(const std::vector<std::pair<std::string, Ptr<>>>& named) {
  for (auto& [n, m] : named) append(n, m);
}
void Sequential::append(Ptr<> module) { register_module_impl(std::to_string(size()), std::move(module)); }
void Sequential::append(const std::string& name, Ptr<> module) { register_module_impl(name, std::move(module)); }
Ptr<> Sequential::ptr(int64_t index) const {
  return child_registry().item(size_t(wrap_index(index, size(), "Sequential"))).second;
}
Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& [n, m] : child_registry()) h = (*m)(h);
  return h;
}
TensorList Sequential::forward_list(const TensorList& inputs) {
  if (inputs.size() == 1) return {forward(inputs[0])};
  TensorList h = inputs;
  for (auto& [n, m] : child_registry()) h = (*m)(h);
  return h;
}

// ---- ModuleList ----
void ModuleList::append(Ptr<> module) { register_module_impl(std::to_string(size()), std::move(module)); }
void ModuleList::extend(const std::vector<Ptr<>>& modules) {
  for (auto& m : modules) append(m);
}
void ModuleList::insert(int64_t index, Ptr<> module) {
  NNKIT_CHECK(module, "[ModuleList::insert] empty module; use nn::Identity() for a no-op");
  int64_t n = int64_t(size());
  if (index < 0) index += n;
  index = std::clamp<int64_t>(index, 0, n);
  std::vector<Ptr<>> all;
  for (auto& [k, m] : child_registry()) all.push_back(m);
  all.insert(all.begin() + index, std::move(module));
  mutable_children().clear();
  for (auto& m : all) append(m);
}
Ptr<> ModuleList::ptr(int64_t index) const {
  return child_registry().item(size_t(wrap_index(index, size(), "ModuleList"))).second;
}

// ---- ModuleDict ----
ModuleDict::ModuleDict(const std::vector<std::pair<std::string, Ptr<>>>& items) {
  for (auto& [k, m] : items) insert(k, m);
}
void ModuleDict::insert(const std::string& key, Ptr<> module) { register_module_impl(key, std::move(module)); }
void ModuleDict::update(const std::string& key, Ptr<> module) {
  if (contains(key))
    replace_module_impl(key, std::move(module));
  else
    insert(key, std::move(module));
}
Ptr<> ModuleDict::ptr(const std::string& key) const {
  const Ptr<>* p = child_registry().find(key);
  if (!p) {
    std::string avail;
    for (auto& k : keys()) avail += (avail.empty() ? "" : ", ") + k;
    nnkit::detail::throw_error("[ModuleDict] no key '" + key + "' (keys: " + (avail.empty() ? "none" : avail) + ")");
  }
  return *p;
}
Ptr<> ModuleDict::pop(const std::string& key) {
  ptr(key);  // the error names the keys
  return unregister_module(key);
}
void ModuleDict::clear() { mutable_children().clear(); }

// ---- ParameterList / ParameterDict ----
ParameterList::ParameterList(const TensorList& params) {
  for (auto& p : params) append(p);
}
Tensor ParameterList::append(const Tensor& p) {
  NNKIT_CHECK(p.defined(), "[ParameterList::append] undefined tensor");
  return register_parameter(std::to_string(size()), p, p.is_floating_point());
}
Tensor ParameterList::at(int64_t index) const {
  return parameter_registry().item(size_t(wrap_index(index, size(), "ParameterList"))).second;
}
std::string ParameterList::extra_repr() const {
  std::string s;
  for (auto& [k, p] : parameter_registry()) s += (s.empty() ? "" : "\n") + param_line(k, p);
  return s;
}
Tensor ParameterDict::insert(const std::string& key, const Tensor& p) {
  NNKIT_CHECK(p.defined(), "[ParameterDict::insert] undefined tensor for key '", key, "'");
  return register_parameter(key, p, p.is_floating_point());
}
Tensor ParameterDict::at(const std::string& key) const {
  const Tensor* t = parameter_registry().find(key);
  NNKIT_CHECK(t, "[ParameterDict] no key '", key, "'");
  return *t;
}
std::string ParameterDict::extra_repr() const {
  std::string s;
  for (auto& [k, p] : parameter_registry()) s += (s.empty() ? "" : "\n") + param_line(k, p);
  return s;
}

}  // namespace nnkit::nn
