// Fuzz target: the safetensors loader must turn any bytes into a StateDict or an nnkit::Error,
// never a crash, a hang or a huge allocation. libFuzzer entry point; see tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <nnkit/nnkit.h>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    nnkit::StateDict sd = nnkit::load_safetensors_bytes(std::string(reinterpret_cast<const char*>(data), size));
    // Whatever loads must also save and load back to the same tensors.
    nnkit::StateDict again = nnkit::load_safetensors_bytes(nnkit::save_safetensors_bytes(sd));
    if (again.keys() != sd.keys()) __builtin_trap();
    for (auto& [k, t] : sd)
      if (again.at(k).sizes() != t.sizes() || again.at(k).dtype() != t.dtype()) __builtin_trap();
  } catch (const nnkit::Error&) {
  }
  return 0;
}
