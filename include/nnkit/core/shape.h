#pragma once
// Shape: a small vector of int64_t (sizes, strides, dimension lists) that stores up to
// kInline values without touching the heap, so creating a tensor costs no extra allocation.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <iosfwd>
#include <vector>

namespace nnkit {

class Shape {
 public:
  static constexpr size_t kInline = 6;

  Shape() = default;
  Shape(std::initializer_list<int64_t> v) { assign(v.begin(), v.size()); }
  Shape(const std::vector<int64_t>& v) { assign(v.data(), v.size()); }  // NOLINT: implicit by design
  Shape(const int64_t* data, size_t n) { assign(data, n); }
  // A single dimension or index: t.sum(0), t.view(-1).
  Shape(int64_t single) { assign(&single, 1); }  // NOLINT
  Shape(int single) : Shape(static_cast<int64_t>(single)) {}  // NOLINT
  static Shape filled(size_t n, int64_t value) {
    Shape s;
    s.resize(n, value);
    return s;
  }

  Shape(const Shape& o) {
    if (!o.heap_) {
      copy_inline(o);
    } else {
      assign(o.data(), o.size_);
    }
  }
  Shape(Shape&& o) noexcept { move_from(o); }
  Shape& operator=(const Shape& o) {
    if (this == &o) return *this;
    if (!o.heap_ && !heap_)
      copy_inline(o);
    else
      assign(o.data(), o.size_);
    return *this;
  }
  Shape& operator=(Shape&& o) noexcept {
    if (this != &o) {
      release();
      move_from(o);
    }
    return *this;
  }
  ~Shape() { release(); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  int64_t* data() { return heap_ ? heap_ : inline_; }
  const int64_t* data() const { return heap_ ? heap_ : inline_; }
  int64_t& operator[](size_t i) { return data()[i]; }
  int64_t operator[](size_t i) const { return data()[i]; }
  int64_t* begin() { return data(); }
  int64_t* end() { return data() + size_; }
  const int64_t* begin() const { return data(); }
  const int64_t* end() const { return data() + size_; }
  int64_t back() const { return data()[size_ - 1]; }
  int64_t front() const { return data()[0]; }

  void resize(size_t n, int64_t fill = 0) {
    reserve(n);
    for (size_t i = size_; i < n; ++i) data()[i] = fill;
    size_ = n;
  }
  void push_back(int64_t v) {
    reserve(size_ + 1);
    data()[size_++] = v;
  }
  void insert(size_t pos, int64_t v) {
    reserve(size_ + 1);
    int64_t* d = data();
    std::memmove(d + pos + 1, d + pos, (size_ - pos) * sizeof(int64_t));
    d[pos] = v;
    ++size_;
  }
  void erase(size_t pos) {
    int64_t* d = data();
    std::memmove(d + pos, d + pos + 1, (size_ - pos - 1) * sizeof(int64_t));
    --size_;
  }
  void clear() { size_ = 0; }

  // Product of all entries (the number of elements for a sizes Shape).
  int64_t numel() const {
    int64_t n = 1;
    for (size_t i = 0; i < size_; ++i) n *= data()[i];
    return n;
  }
  std::vector<int64_t> vec() const { return {begin(), end()}; }
  operator std::vector<int64_t>() const { return vec(); }  // NOLINT

  friend bool operator==(const Shape& a, const Shape& b) {
    return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin());
  }
  friend bool operator==(const Shape& a, const std::vector<int64_t>& b) {
    return a.size_ == b.size() && std::equal(a.begin(), a.end(), b.begin());
  }
  friend bool operator==(const std::vector<int64_t>& b, const Shape& a) { return a == b; }

 private:
  void reserve(size_t n) {
    if (n <= capacity()) return;
    size_t cap = std::max(n, 2 * capacity());
    auto* h = new int64_t[cap];
    std::memcpy(h, data(), size_ * sizeof(int64_t));
    delete[] heap_;
    heap_ = h;
    heap_cap_ = cap;
  }
  size_t capacity() const { return heap_ ? heap_cap_ : kInline; }
  void assign(const int64_t* src, size_t n) {
    size_ = 0;
    reserve(n);
    if (n) std::memcpy(data(), src, n * sizeof(int64_t));  // src may be null when n == 0
    size_ = n;
  }
  void release() {
    delete[] heap_;
    heap_ = nullptr;
  }
  // Whole inline buffer at once (a fixed-size copy the compiler inlines; the unused tail is
  // copied too, harmlessly): a tensor's sizes are copied on every op.
  void copy_inline(const Shape& o) {
    std::memcpy(inline_, o.inline_, sizeof(inline_));
    size_ = o.size_;
  }
  void move_from(Shape& o) {
    size_ = o.size_;
    if (o.heap_) {
      heap_ = o.heap_;
      heap_cap_ = o.heap_cap_;
      o.heap_ = nullptr;
    } else {
      heap_ = nullptr;
      std::memcpy(inline_, o.inline_, sizeof(inline_));  // fixed size: a few moves, no call
    }
    o.size_ = 0;
  }

  int64_t inline_[kInline];
  int64_t* heap_ = nullptr;
  size_t heap_cap_ = 0;
  size_t size_ = 0;
};

// Prints like PyTorch's torch.Size in C++: "[2, 3, 4]".
std::ostream& operator<<(std::ostream& os, const Shape& s);

}  // namespace nnkit
