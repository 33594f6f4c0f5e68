// The CPU backend's instance; its kernels are in elementwise.cpp, reduce.cpp, blas_dnn.cpp,
// nn_kernels.cpp and random.cpp (mirroring cuda/).
#include "cpu/backend.h"

namespace nnkit::detail {

namespace {
constinit const CpuBackend kCpuBackend{};
}  // namespace

const Backend& cpu_backend() { return kCpuBackend; }

}  // namespace nnkit::detail
