// The one place a device chooses its backend (src/backend/backend.h).
#include "backend/backend.h"

#include "nnkit/core/error.h"

namespace nnkit::detail {

const Backend& backend(Device device) { return device.is_cpu() ? cpu_backend() : cuda_backend(); }

int64_t checked_index(int64_t v, int64_t size, const char* op, int64_t d) {
  if (v < 0) v += size;
  NNKIT_CHECK(v >= 0 && v < size, "[", op, "] index ", (v < 0 ? v - size : v), " is out of bounds for dimension ", d,
              " with size ", size);
  return v;
}

Tensor gemm_ready(const Tensor& m) {
  int64_t rs = m.stride(-2), cs = m.stride(-1);
  if (cs == 1 || rs == 1 || m.size(-1) <= 1 || m.size(-2) <= 1) return m;
  return m.contiguous();
}

#ifndef NNKIT_WITH_CUDA
// A build without CUDA: the CPU backend alone. Never reached in practice, since no CUDA tensor
// can be allocated in such a build.
const Backend& cuda_backend() {
  throw_error("[cuda] this build of nnkit has no CUDA support (configure with NNKIT_CUDA=ON on a machine with the "
              "CUDA toolkit and cuDNN)");
}
#endif

}  // namespace nnkit::detail
