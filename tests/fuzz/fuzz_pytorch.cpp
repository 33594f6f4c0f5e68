// Fuzz target: the torch.save loader (zip + restricted unpickler) must turn any bytes into a
// StateDict or an nnkit::Error, never a crash, a hang or a huge allocation.
#include <cstddef>
#include <cstdint>
#include <nnkit/nnkit.h>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    nnkit::StateDict sd = nnkit::load_pytorch_bytes(std::string(reinterpret_cast<const char*>(data), size));
    for (auto& [k, t] : sd) (void)t.numel();
  } catch (const nnkit::Error&) {
  }
  return 0;
}
