// Parity with LibTorch: views and joins (src/ops/views.cpp, join.cpp), float32 and float64
// Helpers and tolerances: parity_util.h.
#include "parity/parity_util.h"

using namespace parity;

namespace {
class ParityViews : public DtypeTest {};
}  // namespace

TEST_P(ParityViews, ViewsExpandCatStack) {
  auto d = GetParam();
  check_op("views", {R({2, 3, 4}, d)},
           [](auto& v) { return v[0].permute({2, 0, 1}).reshape({4, 6}).t().slice(0, 1, 5, 2).select(1, 2) * 1.0 + v[0].flatten().narrow(0, 3, 2); },
           [](auto& v) { return v[0].permute({2, 0, 1}).reshape({4, 6}).t().slice(0, 1, 5, 2).select(1, 2) * 1.0 + v[0].flatten().narrow(0, 3, 2); });
  check_op("expand/unsqueeze/squeeze", {R({3, 1}, d)},
           [](auto& v) { return v[0].expand({2, 3, 4}).sum(0).unsqueeze(0).squeeze(0) * 2.0; },
           [](auto& v) { return v[0].expand({2, 3, 4}).sum(0).unsqueeze(0).squeeze(0) * 2.0; });
  check_op("cat/stack", {R({2, 3}, d), R({2, 5}, d)},
           [](auto& v) { return nk::cat({v[0], v[1]}, 1).sum(0) * 2.0 + nk::stack({v[1], v[1] * 3.0}, 1).sum(); },
           [](auto& v) { return torch::cat({v[0], v[1]}, 1).sum(0) * 2.0 + torch::stack({v[1], v[1] * 3.0}, 1).sum(); });
}

NNKIT_PARITY_DTYPES(ParityViews);
