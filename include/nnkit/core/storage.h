#pragma once
// Storage: a reference-counted block of device memory. Views share one Storage; the version
// counter lives here, so every view (and detach()) sees in-place changes, as in PyTorch.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>

#include "nnkit/core/device.h"
#include "nnkit/core/intrusive.h"

namespace nnkit {

class Storage : public RefCounted {
 public:
  // Allocates nbytes on `device` (64-byte aligned on the CPU; the caching allocator on CUDA).
  static IntrusivePtr<Storage> allocate(size_t nbytes, Device device);
  // Wraps memory owned elsewhere; `deleter` (may be empty) runs when the last view goes away.
  static IntrusivePtr<Storage> wrap(void* data, size_t nbytes, Device device, std::function<void(void*)> deleter);
  ~Storage() override;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint32_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  Storage() = default;
  enum class Kind : uint8_t { CpuBlock, Cuda, Wrapped };
  void* data_ = nullptr;
  size_t block_bytes_ = 0;  // CpuBlock: the size of the block handed out by the allocator
  Kind kind_ = Kind::Wrapped;
  size_t nbytes_ = 0;
  Device device_;
  std::atomic<uint32_t> version_{0};
  std::function<void(void*)> deleter_;  // Wrapped only
};

// Returns the CPU blocks nnkit keeps for reuse to the system.
void cpu_empty_cache();

}  // namespace nnkit
