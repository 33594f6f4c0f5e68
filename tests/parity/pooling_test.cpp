// Parity with LibTorch: pooling (src/ops/pooling.cpp), float32 and float64
// Helpers and tolerances: parity_util.h.
#include "parity/parity_util.h"

using namespace parity;

namespace {
class ParityPooling : public DtypeTest {};
}  // namespace

TEST_P(ParityPooling, MaxAvgAdaptive) {
  auto d = GetParam();
  check_op("max_pool2d", {R({2, 3, 9, 8}, d)},
           [](auto& v) { return F::max_pool2d(v[0], {.kernel_size = 3, .stride = 2, .padding = 1}); },
           [](auto& v) { return torch::max_pool2d(v[0], {3, 3}, {2, 2}, {1, 1}); });
  check_op("max_pool2d ceil", {R({1, 2, 7, 7}, d)},
           [](auto& v) { return F::max_pool2d(v[0], {.kernel_size = 2, .ceil_mode = true}); },
           [](auto& v) { return torch::max_pool2d(v[0], {2, 2}, {2, 2}, {0, 0}, {1, 1}, true); });
  check_op("avg_pool2d", {R({2, 3, 9, 8}, d)},
           [](auto& v) { return F::avg_pool2d(v[0], {.kernel_size = 3, .stride = 2, .padding = 1}); },
           [](auto& v) { return torch::avg_pool2d(v[0], {3, 3}, {2, 2}, {1, 1}); });
  check_op("adaptive_avg_pool2d", {R({2, 3, 10, 7}, d)}, [](auto& v) { return F::adaptive_avg_pool2d(v[0], {3, 4}); },
           [](auto& v) { return torch::adaptive_avg_pool2d(v[0], {3, 4}); });
}

NNKIT_PARITY_DTYPES(ParityPooling);
