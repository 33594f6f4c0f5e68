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
int device_count();
void synchronize();
}  // namespace cuda

}  // namespace nnkit
