// The CPU backend's random fills (mirrors cuda/random.cu): Philox4x32-10 counter blocks, two
// elements per block (uniform: 24 or 53 random bits; normal: Box-Muller in double), in parallel
// over blocks, so the numbers do not depend on the thread count or the device.
#include <cmath>

#include "core/dispatch.h"
#include "core/generator.h"
#include "cpu/backend.h"
#include "cpu/loops.h"

namespace nnkit::detail {

namespace {
// f(w, i) for every Philox counter block offset, offset + 1, ... that n elements need (two per
// block), in parallel: w the block's four words, i the index of its first element.
template <typename F>
void for_each_block(int64_t n, uint64_t seed, uint64_t offset, F f) {
  cpu::parallel_for((n + 1) / 2, cpu::kParallelGrain / 2, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      uint32_t w[4];
      Philox::block(seed, offset + uint64_t(blk), w);
      f(w, 2 * blk);
    }
  });
}
}  // namespace

void CpuBackend::fill_uniform(const Tensor& t, uint64_t seed, uint64_t offset) const {
  dispatch<kFloatingTypes>(t.dtype(), "rand", [&]<typename T>() {
    const int64_t n = t.numel();
    T* p = t.data_ptr<T>();
    for_each_block(n, seed, offset, [&](const uint32_t* w, int64_t i) {
      for (int k = 0; k < 2 && i + k < n; ++k) {
        if constexpr (std::is_same_v<T, float>)
          p[i + k] = uniform_float(w[2 * k]);
        else
          p[i + k] = uniform_double(w[2 * k], w[2 * k + 1]);
      }
    });
  });
}

void CpuBackend::fill_normal(const Tensor& t, uint64_t seed, uint64_t offset) const {
  dispatch<kFloatingTypes>(t.dtype(), "randn", [&]<typename T>() {
    const int64_t n = t.numel();
    T* p = t.data_ptr<T>();
    // Box-Muller: one block (4 words) gives two normals in double precision.
    for_each_block(n, seed, offset, [&](const uint32_t* w, int64_t i) {
      double u1 = 1.0 - uniform_double(w[0], w[1]);  // (0, 1]
      double u2 = uniform_double(w[2], w[3]);
      double rad = std::sqrt(-2.0 * std::log(u1));
      double theta = 2.0 * M_PI * u2;
      p[i] = static_cast<T>(rad * std::cos(theta));
      if (i + 1 < n) p[i + 1] = static_cast<T>(rad * std::sin(theta));
    });
  });
}

}  // namespace nnkit::detail
