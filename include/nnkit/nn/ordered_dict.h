#pragma once
// OrderedDict: insertion-ordered name -> value map (PyTorch's registries keep insertion order).
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nnkit/core/error.h"

namespace nnkit {

template <typename V>
class OrderedDict {
 public:
  using Item = std::pair<std::string, V>;

  OrderedDict() = default;
  OrderedDict(std::initializer_list<Item> items) {
    for (auto& it : items) insert(it.first, it.second);
  }

  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  bool contains(const std::string& key) const { return index_.count(key) > 0; }

  // Inserts a new key (error if present).
  V& insert(const std::string& key, V value) {
    NNKIT_CHECK(!contains(key), "[OrderedDict] key '", key, "' already exists");
    index_.emplace(key, items_.size());
    items_.emplace_back(key, std::move(value));
    return items_.back().second;
  }
  // Inserts or replaces, keeping the original position on replace.
  V& insert_or_assign(const std::string& key, V value) {
    auto it = index_.find(key);
    if (it == index_.end()) return insert(key, std::move(value));
    return items_[it->second].second = std::move(value);
  }
  V& at(const std::string& key) {
    auto it = index_.find(key);
    NNKIT_CHECK(it != index_.end(), "[OrderedDict] no key '", key, "'");
    return items_[it->second].second;
  }
  const V& at(const std::string& key) const { return const_cast<OrderedDict*>(this)->at(key); }
  V& operator[](const std::string& key) { return at(key); }
  const V& operator[](const std::string& key) const { return at(key); }
  V* find(const std::string& key) {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &items_[it->second].second;
  }
  const V* find(const std::string& key) const { return const_cast<OrderedDict*>(this)->find(key); }
  // Removes a key (error if absent) and returns its value.
  V erase(const std::string& key) {
    auto it = index_.find(key);
    NNKIT_CHECK(it != index_.end(), "[OrderedDict] no key '", key, "'");
    size_t pos = it->second;
    V v = std::move(items_[pos].second);
    items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(pos));
    reindex();
    return v;
  }
  void clear() {
    items_.clear();
    index_.clear();
  }

  std::vector<std::string> keys() const {
    std::vector<std::string> k;
    for (auto& it : items_) k.push_back(it.first);
    return k;
  }
  std::vector<V> values() const {
    std::vector<V> v;
    for (auto& it : items_) v.push_back(it.second);
    return v;
  }
  const std::vector<Item>& items() const { return items_; }
  Item& item(size_t i) { return items_.at(i); }
  const Item& item(size_t i) const { return items_.at(i); }

  auto begin() { return items_.begin(); }
  auto end() { return items_.end(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  void reindex() {
    index_.clear();
    for (size_t i = 0; i < items_.size(); ++i) index_.emplace(items_[i].first, i);
  }
  std::vector<Item> items_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace nnkit
