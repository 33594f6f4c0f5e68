#pragma once
#include <cstdint>
#include <iosfwd>
#include <string>

namespace nnkit {

enum class DeviceType : uint8_t { CPU = 0, CUDA = 1 };

// Where a tensor's memory lives. Device::cpu(), Device::cuda(index).
struct Device {
  DeviceType type = DeviceType::CPU;
  int16_t index = 0;

  static constexpr Device cpu() { return {DeviceType::CPU, 0}; }
  static constexpr Device cuda(int index = 0) { return {DeviceType::CUDA, static_cast<int16_t>(index)}; }
  constexpr bool is_cpu() const { return type == DeviceType::CPU; }
  constexpr bool is_cuda() const { return type == DeviceType::CUDA; }
  friend constexpr bool operator==(const Device&, const Device&) = default;
  std::string str() const;  // "cpu", "cuda:0"
};
std::ostream& operator<<(std::ostream& os, const Device& d);

namespace cuda {
// True when this build has CUDA and a device is present.
bool is_available();
// Number of CUDA devices (0 in a build without CUDA or on a machine without a GPU).
int device_count();
// Waits until all work queued on every device's current stream is done (surfacing any
// asynchronous kernel error as an nnkit::Error). A no-op without CUDA.
void synchronize();

// CUDA memory comes from a caching allocator: freed blocks are kept for reuse (per size class
// and stream) instead of going back to cudaFree. Statistics per device, in bytes, like
// torch.cuda.memory_allocated() / memory_reserved() / max_memory_allocated(); all zero
// without CUDA.
struct MemoryStats {
  int64_t allocated = 0;       // in tensors now (rounded to the allocator's size classes)
  int64_t reserved = 0;        // obtained from cudaMalloc and not yet released
  int64_t peak_allocated = 0;  // highest `allocated` since the start or the last reset
  int64_t num_allocs = 0;      // allocations served
  int64_t num_device_allocs = 0;  // of which needed a cudaMalloc
};
MemoryStats memory_stats(int device = 0);
int64_t memory_allocated(int device = 0);
int64_t memory_reserved(int device = 0);
int64_t max_memory_allocated(int device = 0);
void reset_peak_memory_stats(int device = 0);
// Returns every cached (unused) block to the driver.
void empty_cache();

// TF32 tensor cores for float32 matrix products and convolutions: off by default (results
// equal the CPU's to float32 rounding), like torch.backends.cuda.matmul.allow_tf32 = False.
void set_allow_tf32(bool allow);
bool allow_tf32();
}  // namespace cuda

}  // namespace nnkit
