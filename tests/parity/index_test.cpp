// Parity with LibTorch: indexing, flip and pad (src/ops/index.cpp), float32 and float64
// Helpers and tolerances: parity_util.h.
#include "parity/parity_util.h"

using namespace parity;

namespace {
class ParityIndex : public DtypeTest {};
}  // namespace

TEST_P(ParityIndex, GatherScatterFlipPad) {
  auto d = GetParam();
  nk::Tensor idx = nk::from_vector(std::vector<int64_t>{2, 0, 2, 3, -1});
  check_op("index_select", {R({3, 4, 5}, d), idx},
           [](auto& v) { return nk::index_select(v[0], 2, v[1]); },
           [](auto& v) { return torch::index_select(v[0], 2, torch::where(v[1] < 0, v[1] + 5, v[1])); });
  nk::Tensor gidx = Idx({3, 2, 5}, 4);
  check_op("gather", {R({3, 4, 5}, d), gidx}, [](auto& v) { return nk::gather(v[0], 1, v[1]); },
           [](auto& v) { return torch::gather(v[0], 1, v[1]); });
  check_op("scatter_add", {R({3, 4, 5}, d), gidx, R({3, 2, 5}, d)},
           [](auto& v) { return nk::scatter_add(v[0], 1, v[1], v[2]); },
           [](auto& v) { return torch::scatter_add(v[0], 1, v[1], v[2]); });
  check_op("index_add", {R({6, 3}, d), idx.narrow(0, 0, 4), R({4, 3}, d)},
           [](auto& v) { return nk::index_add(v[0], 0, v[1], v[2]); },
           [](auto& v) { return v[0].index_add(0, v[1], v[2]); });
  check_op("flip", {R({3, 4, 5}, d)}, [](auto& v) { return nk::flip(v[0], {0, 2}); },
           [](auto& v) { return torch::flip(v[0], {0, 2}); });
  for (std::string mode : {"constant", "reflect", "replicate", "circular"}) {
    check_op("pad " + mode, {R({2, 3, 5, 6}, d)}, [mode](auto& v) { return nk::pad(v[0], {2, 1, 1, 3}, mode, 0.5); },
             [mode](auto& v) {
               auto o = torch::nn::functional::PadFuncOptions({2, 1, 1, 3});
               if (mode == "constant") o.mode(torch::kConstant).value(0.5);
               if (mode == "reflect") o.mode(torch::kReflect);
               if (mode == "replicate") o.mode(torch::kReplicate);
               if (mode == "circular") o.mode(torch::kCircular);
               return torch::nn::functional::pad(v[0], o);
             });
  }
  check_op("pad crop", {R({2, 5, 6}, d)}, [](auto& v) { return nk::pad(v[0], {-1, 2, 0, -2}); },
           [](auto& v) { return torch::nn::functional::pad(v[0], torch::nn::functional::PadFuncOptions({-1, 2, 0, -2})); });
}

NNKIT_PARITY_DTYPES(ParityIndex);
