#pragma once
// Private: the global random generator. Philox4x32-10 (counter based, as PyTorch uses on
// CUDA): element i of a draw depends only on (seed, offset + i), so results do not depend on
// how many threads fill a tensor, and a CUDA kernel can produce the same stream.
#include <cmath>
#include <cstdint>

// Shared with the CUDA kernels (cuda/random.cu), which draw the same numbers on the device.
#ifdef __CUDACC__
#define NNKIT_HD __host__ __device__
#else
#define NNKIT_HD
#endif

namespace nnkit::detail {

struct Philox {
  NNKIT_HD static inline void round(uint32_t (&ctr)[4], uint32_t (&key)[2]) {
    constexpr uint64_t M0 = 0xD2511F53, M1 = 0xCD9E8D57;
    uint64_t p0 = M0 * ctr[0], p1 = M1 * ctr[2];
    uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0), hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    uint32_t n0 = hi1 ^ ctr[1] ^ key[0], n2 = hi0 ^ ctr[3] ^ key[1];
    ctr[0] = n0;
    ctr[1] = lo1;
    ctr[2] = n2;
    ctr[3] = lo0;
  }
  // Four 32-bit random words for counter `index` under `seed`.
  NNKIT_HD static inline void block(uint64_t seed, uint64_t index, uint32_t out[4]) {
    uint32_t ctr[4] = {uint32_t(index), uint32_t(index >> 32), 0, 0};
    uint32_t key[2] = {uint32_t(seed), uint32_t(seed >> 32)};
    for (int r = 0; r < 10; ++r) {
      round(ctr, key);
      if (r < 9) {
        key[0] += 0x9E3779B9;
        key[1] += 0xBB67AE85;
      }
    }
    for (int i = 0; i < 4; ++i) out[i] = ctr[i];
  }
};

// Uniform in [0, 1) with 24 (float) or 53 (double) random bits.
NNKIT_HD inline float uniform_float(uint32_t w) { return float(w >> 8) * (1.0f / 16777216.0f); }
NNKIT_HD inline double uniform_double(uint32_t a, uint32_t b) {
  uint64_t x = (uint64_t(a) << 32 | b) >> 11;
  return double(x) * (1.0 / 9007199254740992.0);
}

// Reserves `count` counter blocks from the global generator and returns (seed, first block).
struct DrawRange {
  uint64_t seed;
  uint64_t offset;
};
DrawRange reserve_random(uint64_t blocks);

}  // namespace nnkit::detail
