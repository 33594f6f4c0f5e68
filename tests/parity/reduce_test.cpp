// Parity with LibTorch: reductions and softmax (src/ops/reduce.cpp, softmax.cpp), float32 and float64
// Helpers and tolerances: parity_util.h.
#include "parity/parity_util.h"

using namespace parity;

namespace {
class ParityReduce : public DtypeTest {};
}  // namespace

TEST_P(ParityReduce, Reductions) {
  auto d = GetParam();
  check_op("sum/mean", {R({3, 4, 5}, d)},
           [](auto& v) { return v[0].sum({0, 2}) + v[0].mean(2).sum(0) + v[0].sum() + v[0].mean(); },
           [](auto& v) { return v[0].sum(std::vector<int64_t>{0, 2}) + v[0].mean(2).sum(0) + v[0].sum() + v[0].mean(); });
  check_op("var/std", {R({3, 4, 5}, d)},
           [](auto& v) { return v[0].var(2, 1).sum(0) + v[0].std({0, 2}, 0) + v[0].var(1, 0, true).view({3, 5}).sum(); },
           [](auto& v) { return v[0].var(2, 1).sum(0) + v[0].std(std::vector<int64_t>{0, 2}, false) + v[0].var(1, false, true).view({3, 5}).sum(); });
  check_op("amax/max(dim)", {R({4, 6}, d)},
           [](auto& v) { return v[0].amax(1) + std::get<0>(v[0].max(1)) + v[0].amin(1); },
           [](auto& v) { return v[0].amax(1) + std::get<0>(v[0].max(1)) + v[0].amin(1); });
  check_op("argmax", {R({5, 7}, d)}, [](auto& v) { return v[0].argmax(1); }, [](auto& v) { return v[0].argmax(1); });
}

TEST_P(ParityReduce, SoftmaxLogSoftmax) {
  auto d = GetParam();
  check_op("softmax/log_softmax", {R({4, 9}, d)},
           [](auto& v) { return v[0].softmax(1) * 3.0 + v[0].log_softmax(0); },
           [](auto& v) { return v[0].softmax(1) * 3.0 + v[0].log_softmax(0); });
}

NNKIT_PARITY_DTYPES(ParityReduce);
