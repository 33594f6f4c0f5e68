#include "core/generator.h"

#include <atomic>
#include <mutex>

#include "nnkit/ops.h"

namespace nnkit {
namespace {
std::mutex gen_mutex;
uint64_t gen_seed = 67280421310721ull;  // PyTorch's default seed
uint64_t gen_offset = 0;
}  // namespace

void manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(gen_mutex);
  gen_seed = seed;
  gen_offset = 0;
}

namespace detail {
DrawRange reserve_random(uint64_t blocks) {
  std::lock_guard<std::mutex> lock(gen_mutex);
  DrawRange r{gen_seed, gen_offset};
  gen_offset += blocks;
  return r;
}
}  // namespace detail
}  // namespace nnkit
