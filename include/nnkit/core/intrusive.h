#pragma once
// A minimal intrusive reference-counted pointer: one allocation per object, a handle the size
// of a pointer. Tensor and Storage use it so that copying a Tensor is one atomic increment.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace nnkit {

class RefCounted {
 public:
  RefCounted() = default;
  RefCounted(const RefCounted&) = delete;
  RefCounted& operator=(const RefCounted&) = delete;
  virtual ~RefCounted() = default;
  uint32_t use_count() const { return refs_.load(std::memory_order_relaxed); }
  // Tensor impls and storages are created and dropped at every op: they come from nnkit's
  // per-thread block cache, not from malloc (src/core/core.cpp).
  static void* operator new(size_t bytes);
  static void operator delete(void* p, size_t bytes) noexcept;

 private:
  template <typename T> friend class IntrusivePtr;
  // Atomic read-modify-writes cost ~6 ns each on this project's machines, a large part of a
  // tiny op, so the common lifetimes avoid them: a new object starts owned by one handle
  // (a plain store), and dropping the last handle needs only a load: with one reference, held
  // by the caller, no other thread can be copying it. The acquire load pairs with the release
  // in other threads' earlier decrements, as the fetch_sub would.
  void adopt() const { refs_.store(1, std::memory_order_relaxed); }
  void retain() const { refs_.fetch_add(1, std::memory_order_relaxed); }
  bool release() const {
    if (refs_.load(std::memory_order_acquire) == 1) return true;
    return refs_.fetch_sub(1, std::memory_order_acq_rel) == 1;
  }
  mutable std::atomic<uint32_t> refs_{0};
};

template <typename T>
class IntrusivePtr {
 public:
  IntrusivePtr() = default;
  IntrusivePtr(std::nullptr_t) {}  // NOLINT
  explicit IntrusivePtr(T* p) : p_(p) {
    if (p_) p_->retain();
  }
  // Takes a freshly created object (reference count 0) as its first owner.
  struct Adopt {};
  IntrusivePtr(T* fresh, Adopt) : p_(fresh) { p_->adopt(); }
  IntrusivePtr(const IntrusivePtr& o) : p_(o.p_) {
    if (p_) p_->retain();
  }
  IntrusivePtr(IntrusivePtr&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  template <typename U>
  IntrusivePtr(const IntrusivePtr<U>& o) : IntrusivePtr(static_cast<T*>(o.get())) {}  // NOLINT
  IntrusivePtr& operator=(const IntrusivePtr& o) {
    IntrusivePtr(o).swap(*this);
    return *this;
  }
  IntrusivePtr& operator=(IntrusivePtr&& o) noexcept {
    IntrusivePtr(std::move(o)).swap(*this);
    return *this;
  }
  ~IntrusivePtr() { reset(); }

  void reset() {
    if (p_ && p_->release()) delete p_;
    p_ = nullptr;
  }
  void swap(IntrusivePtr& o) noexcept { std::swap(p_, o.p_); }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }
  uint32_t use_count() const { return p_ ? p_->use_count() : 0; }
  friend bool operator==(const IntrusivePtr& a, const IntrusivePtr& b) { return a.p_ == b.p_; }

 private:
  T* p_ = nullptr;
};

template <typename T, typename... Args>
IntrusivePtr<T> make_intrusive(Args&&... args) {
  return IntrusivePtr<T>(new T(std::forward<Args>(args)...), typename IntrusivePtr<T>::Adopt{});
}

}  // namespace nnkit
