// Random fills on the device with the CPU's generator (Philox4x32-10, src/core/generator.h):
// counter block i gives elements 2i and 2i+1, so a seed gives the same numbers on every device.
#include <math_constants.h>

#include "core/dispatch.h"
#include "core/generator.h"
#include "cuda_kernels.h"
#include "runtime.h"

namespace nnkit::cuda_detail {
namespace {

template <typename T>
__global__ void uniform_kernel(T* p, int64_t n, uint64_t seed, uint64_t offset) {
  int64_t blocks = (n + 1) / 2;
  for (int64_t blk = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; blk < blocks;
       blk += int64_t(gridDim.x) * blockDim.x) {
    uint32_t w[4];
    detail::Philox::block(seed, offset + uint64_t(blk), w);
    for (int k = 0; k < 2 && 2 * blk + k < n; ++k) {
      if constexpr (std::is_same_v<T, float>)
        p[2 * blk + k] = detail::uniform_float(w[2 * k]);
      else
        p[2 * blk + k] = detail::uniform_double(w[2 * k], w[2 * k + 1]);
    }
  }
}

// Box-Muller in double, as on the CPU: one block gives two normals.
template <typename T>
__global__ void normal_kernel(T* p, int64_t n, uint64_t seed, uint64_t offset) {
  int64_t blocks = (n + 1) / 2;
  for (int64_t blk = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; blk < blocks;
       blk += int64_t(gridDim.x) * blockDim.x) {
    uint32_t w[4];
    detail::Philox::block(seed, offset + uint64_t(blk), w);
    double u1 = 1.0 - detail::uniform_double(w[0], w[1]);  // (0, 1]
    double u2 = detail::uniform_double(w[2], w[3]);
    double rad = ::sqrt(-2.0 * ::log(u1));
    double theta = 2.0 * CUDART_PI * u2;
    p[2 * blk] = static_cast<T>(rad * ::cos(theta));
    if (2 * blk + 1 < n) p[2 * blk + 1] = static_cast<T>(rad * ::sin(theta));
  }
}

template <template <typename> class K>
void launch_fill(const Tensor& t, uint64_t seed, uint64_t offset, const char* op) {
  int64_t n = t.numel();
  if (n == 0) return;
  NNKIT_CHECK(t.is_contiguous(), "[", op, "] internal error: expects a contiguous tensor");
  int dev = prepare(t);
  cudaStream_t s = current_stream(dev);
  unsigned grid = grid_for((n + 1) / 2);
  detail::dispatch<detail::kFloatingTypes>(t.dtype(), op, [&]<typename T>() {
    K<T>::launch(grid, s, static_cast<T*>(t.raw_data()), n, seed, offset);
  });
  check_launch(op);
}

template <typename T>
struct Uniform {
  static void launch(unsigned grid, cudaStream_t s, T* p, int64_t n, uint64_t seed, uint64_t offset) {
    uniform_kernel<T><<<grid, 256, 0, s>>>(p, n, seed, offset);
  }
};
template <typename T>
struct Normal {
  static void launch(unsigned grid, cudaStream_t s, T* p, int64_t n, uint64_t seed, uint64_t offset) {
    normal_kernel<T><<<grid, 256, 0, s>>>(p, n, seed, offset);
  }
};

}  // namespace

void fill_uniform(const Tensor& t, uint64_t seed, uint64_t offset) { launch_fill<Uniform>(t, seed, offset, "rand"); }
void fill_normal(const Tensor& t, uint64_t seed, uint64_t offset) { launch_fill<Normal>(t, seed, offset, "randn"); }

}  // namespace nnkit::cuda_detail
