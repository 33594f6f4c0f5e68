#pragma once
#include <utility>
// RemovableHandle: returned by every hook registration. Removing is idempotent, works through
// any copy of the handle, and is safe at any time (inside the hook, during forward or backward).
#include <functional>
#include <memory>

namespace nnkit {

class [[nodiscard]] RemovableHandle {
 public:
  RemovableHandle() = default;
  explicit RemovableHandle(std::function<void()> remover)
      : state_(std::make_shared<State>(State{std::move(remover), false})) {}

  void remove() {
    if (!state_ || state_->removed) return;
    state_->removed = true;
    auto fn = std::move(state_->remover);
    if (fn) fn();
  }
  // True while the hook it stands for is registered.
  bool active() const { return state_ && !state_->removed; }

 private:
  struct State {
    std::function<void()> remover;
    bool removed;
  };
  std::shared_ptr<State> state_;
};

// Removes its hook when it goes out of scope (C++'s answer to Python's `with`).
class [[nodiscard]] ScopedHook {
 public:
  ScopedHook() = default;
  ScopedHook(RemovableHandle handle) : handle_(std::move(handle)) {}  // NOLINT: implicit by design
  ScopedHook(const ScopedHook&) = delete;
  ScopedHook& operator=(const ScopedHook&) = delete;
  ScopedHook(ScopedHook&& o) noexcept = default;
  ScopedHook& operator=(ScopedHook&& o) noexcept {
    if (this != &o) {
      handle_.remove();
      std::swap(handle_, o.handle_);  // o keeps the removed handle
    }
    return *this;
  }
  ~ScopedHook() { handle_.remove(); }
  void remove() { handle_.remove(); }
  bool active() const { return handle_.active(); }

 private:
  RemovableHandle handle_;
};

}  // namespace nnkit
