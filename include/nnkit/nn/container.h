#pragma once
// Containers (torch/nn/modules/container.py): Sequential, ModuleList, ModuleDict,
// ParameterList, ParameterDict.
// Children get PyTorch's names ("0", "1", ... or the dict keys), so parameter names such as
// "layers.2.weight" match the equivalent PyTorch model.
#include <string>
#include <utility>
#include <vector>

#include "nnkit/nn/module.h"

namespace nnkit::nn {

// Iterates a module's children as Module& (for (nn::Module& m : *seq)).
class ChildIterator {
 public:
  using Inner = std::vector<std::pair<std::string, Ptr<>>>::const_iterator;
  explicit ChildIterator(Inner it) : it_(it) {}
  Module& operator*() const { return *it_->second; }
  ChildIterator& operator++() {
    ++it_;
    return *this;
  }
  bool operator==(const ChildIterator& o) const { return it_ == o.it_; }

 private:
  Inner it_;
};

// Calls its children in order, each on the previous one's output.
class Sequential : public Module {
 public:
  Sequential() = default;
  template <typename... M>
  explicit Sequential(const Ptr<M>&... modules) {
    (append(Ptr<>(modules)), ...);
  }
  explicit Sequential(const std::vector<std::pair<std::string, Ptr<>>>& named);

  Tensor forward(const Tensor& x) override;
  TensorList forward_list(const TensorList& inputs) override;

  void append(Ptr<> module);
  void append(const std::string& name, Ptr<> module);
  void push_back(Ptr<> module) { append(std::move(module)); }
  size_t size() const { return child_registry().size(); }
  bool empty() const { return size() == 0; }
  // Negative indices count from the end, as in Python.
  Module& at(int64_t index) const { return *ptr(index); }
  template <typename T>
  T& at(int64_t index) const {
    T* m = ptr(index)->template as<T>();
    NNKIT_CHECK(m, "[Sequential::at] element ", index, " is a ", ptr(index)->name(), ", not the requested type");
    return *m;
  }
  Ptr<> ptr(int64_t index) const;
  Ptr<> operator[](int64_t index) const { return ptr(index); }
  ChildIterator begin() const { return ChildIterator(child_registry().items().begin()); }
  ChildIterator end() const { return ChildIterator(child_registry().items().end()); }
};

// Holds modules in a list, registered as "0", "1", ...; has no forward of its own.
class ModuleList : public Module {
 public:
  ModuleList() = default;
  template <typename... M>
  explicit ModuleList(const Ptr<M>&... modules) {
    (append(Ptr<>(modules)), ...);
  }
  void append(Ptr<> module);
  void push_back(Ptr<> module) { append(std::move(module)); }
  void extend(const std::vector<Ptr<>>& modules);
  // Inserts before `index`; later modules are renamed ("2" becomes "3"), as in PyTorch.
  void insert(int64_t index, Ptr<> module);
  size_t size() const { return child_registry().size(); }
  bool empty() const { return size() == 0; }
  Module& at(int64_t index) const { return *ptr(index); }
  template <typename T>
  T& at(int64_t index) const {
    T* m = ptr(index)->template as<T>();
    NNKIT_CHECK(m, "[ModuleList::at] element ", index, " is a ", ptr(index)->name(), ", not the requested type");
    return *m;
  }
  Ptr<> ptr(int64_t index) const;
  Ptr<> operator[](int64_t index) const { return ptr(index); }
  ChildIterator begin() const { return ChildIterator(child_registry().items().begin()); }
  ChildIterator end() const { return ChildIterator(child_registry().items().end()); }
};

// Holds modules by key, in insertion order.
class ModuleDict : public Module {
 public:
  ModuleDict() = default;
  explicit ModuleDict(const std::vector<std::pair<std::string, Ptr<>>>& items);
  void insert(const std::string& key, Ptr<> module);
  // Replaces an existing key (keeping its position) or inserts a new one.
  void update(const std::string& key, Ptr<> module);
  Module& at(const std::string& key) const { return *ptr(key); }
  template <typename T>
  T& at(const std::string& key) const {
    T* m = ptr(key)->template as<T>();
    NNKIT_CHECK(m, "[ModuleDict::at] '", key, "' is a ", ptr(key)->name(), ", not the requested type");
    return *m;
  }
  Ptr<> ptr(const std::string& key) const;
  Ptr<> operator[](const std::string& key) const { return ptr(key); }
  bool contains(const std::string& key) const { return child_registry().contains(key); }
  // Removes the module (it is unregistered) and returns it.
  Ptr<> pop(const std::string& key);
  void clear();
  std::vector<std::string> keys() const { return child_registry().keys(); }
  std::vector<std::pair<std::string, Ptr<>>> items() const { return child_registry().items(); }
  size_t size() const { return child_registry().size(); }
  ChildIterator begin() const { return ChildIterator(child_registry().items().begin()); }
  ChildIterator end() const { return ChildIterator(child_registry().items().end()); }
};

// Holds parameters in a list, registered as "0", "1", ...
class ParameterList : public Module {
 public:
  ParameterList() = default;
  explicit ParameterList(const TensorList& params);
  Tensor append(const Tensor& param);
  Tensor at(int64_t index) const;
  Tensor operator[](int64_t index) const { return at(index); }
  size_t size() const { return parameter_registry().size(); }
  std::string extra_repr() const override;
};

// Holds parameters by key, in insertion order.
class ParameterDict : public Module {
 public:
  ParameterDict() = default;
  Tensor insert(const std::string& key, const Tensor& param);
  Tensor at(const std::string& key) const;
  Tensor operator[](const std::string& key) const { return at(key); }
  bool contains(const std::string& key) const { return parameter_registry().contains(key); }
  std::vector<std::string> keys() const { return parameter_registry().keys(); }
  size_t size() const { return parameter_registry().size(); }
  std::string extra_repr() const override;
};

}  // namespace nnkit::nn
