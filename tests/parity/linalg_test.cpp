// Parity with LibTorch: matmul, mm, bmm (src/ops/linalg.cpp), float32 and float64
// Helpers and tolerances: parity_util.h.
#include "parity/parity_util.h"

using namespace parity;

namespace {
class ParityLinalg : public DtypeTest {};
}  // namespace

TEST_P(ParityLinalg, Matmul) {
  auto d = GetParam();
  std::vector<std::pair<nk::Shape, nk::Shape>> shapes = {{{7}, {7}},       {{3, 7}, {7}},          {{7}, {7, 4}},
                                                         {{5, 7}, {7, 4}}, {{2, 5, 7}, {7, 4}},    {{2, 1, 5, 7}, {3, 7, 4}},
                                                         {{64, 96}, {96, 80}}};
  for (auto& [a, b] : shapes)
    check_op("matmul", {R(a, d), R(b, d)}, [](auto& v) { return v[0].matmul(v[1]); },
             [](auto& v) { return v[0].matmul(v[1]); });
  check_op("mm transposed", {R({6, 5}, d), R({4, 6}, d)}, [](auto& v) { return v[0].t().mm(v[1].t()); },
           [](auto& v) { return v[0].t().mm(v[1].t()); });
  check_op("bmm", {R({3, 4, 5}, d), R({3, 5, 2}, d)}, [](auto& v) { return v[0].bmm(v[1]); },
           [](auto& v) { return v[0].bmm(v[1]); });
}

NNKIT_PARITY_DTYPES(ParityLinalg);
