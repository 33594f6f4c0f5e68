// Parity with LibTorch: losses (src/nn/functional.cpp, loss.cpp), float32 and float64
// Helpers and tolerances: parity_util.h.
#include "parity/parity_util.h"

using namespace parity;

namespace {
class ParityLoss : public DtypeTest {};
}  // namespace

TEST_P(ParityLoss, CrossEntropyMseL1) {
  auto d = GetParam();
  nk::Tensor target = nk::randint(0, 5, {8});
  target[2].fill_(-100);
  nk::Tensor cw = nk::rand({5}, {.dtype = d}) + 0.5;
  torch::Tensor ttarget = to_torch(target), tcw = to_torch(cw);
  check_op("cross_entropy", {R({8, 5}, d)}, [&](auto& v) { return F::cross_entropy(v[0], target); },
           [&](auto& v) { return torch::nn::functional::cross_entropy(v[0], ttarget); });
  check_op("cross_entropy weight+smoothing", {R({8, 5}, d)},
           [&](auto& v) { return F::cross_entropy(v[0], target, {.weight = cw, .label_smoothing = 0.2}); },
           [&](auto& v) {
             return torch::nn::functional::cross_entropy(
                 v[0], ttarget, torch::nn::functional::CrossEntropyFuncOptions().weight(tcw).label_smoothing(0.2));
           });
  nk::Tensor probs = nk::rand({8, 5}, {.dtype = d}).softmax(1);
  torch::Tensor tprobs = to_torch(probs);
  check_op("cross_entropy probabilities", {R({8, 5}, d)}, [&](auto& v) { return F::cross_entropy(v[0], probs); },
           [&](auto& v) { return torch::nn::functional::cross_entropy(v[0], tprobs); });
  check_op("mse/l1", {R({4, 3}, d), R({4, 3}, d)},
           [](auto& v) { return F::mse_loss(v[0], v[1]) + F::l1_loss(v[0], v[1], F::Reduction::Sum); },
           [](auto& v) { return torch::mse_loss(v[0], v[1]) + torch::l1_loss(v[0], v[1], at::Reduction::Sum); });
}

TEST_P(ParityLoss, BinaryCrossEntropy) {
  auto d = GetParam();
  nk::Tensor probs = nk::rand({3, 4}, {.dtype = d}) * 0.9 + 0.05, tgt = nk::rand({3, 4}, {.dtype = d});
  nk::Tensor bw = R({4}, d).abs();
  torch::Tensor tt = to_torch(tgt), tbw = to_torch(bw);
  check_op("binary_cross_entropy", {probs}, [=](auto& v) { return F::binary_cross_entropy(v[0], tgt, bw); },
           [=](auto& v) { return torch::binary_cross_entropy(v[0], tt, tbw.expand_as(v[0])); });
  nk::Tensor pw = R({4}, d).abs();
  torch::Tensor tpw = to_torch(pw);
  check_op("bce_with_logits", {R({3, 4}, d) * 4.0, tgt},
           [=](auto& v) { return F::binary_cross_entropy_with_logits(v[0], v[1], bw, pw, F::Reduction::Sum); },
           [=](auto& v) { return torch::binary_cross_entropy_with_logits(v[0], v[1], tbw, tpw, at::Reduction::Sum); });
}

NNKIT_PARITY_DTYPES(ParityLoss);
