// Loss modules (include/nnkit/nn/loss.h); semantics from torch/nn/modules/loss.py.
#include "nnkit/nn/loss.h"

#include <utility>

namespace nnkit::nn {

// ---- Loss / WeightedLoss ----
void Loss::expect_input_target(const TensorList& in) const {
  NNKIT_CHECK(in.size() == 2, "[", name(), "] expects (input, target), got ", in.size(), " tensors");
}

WeightedLoss::WeightedLoss(Tensor w, functional::Reduction r) : Loss(r) {
  if (w.defined()) weight = register_buffer("weight", w);
}

// ---- MSELoss, L1Loss ----
TensorList MSELoss::forward_list(const TensorList& in) {
  expect_input_target(in);
  return {functional::mse_loss(in[0], in[1], reduction_)};
}
TensorList L1Loss::forward_list(const TensorList& in) {
  expect_input_target(in);
  return {functional::l1_loss(in[0], in[1], reduction_)};
}

// ---- CrossEntropyLoss, NLLLoss ----
CrossEntropyLoss::CrossEntropyLoss(functional::CrossEntropyOptions o)
    : WeightedLoss(o.weight, o.reduction), options_(std::move(o)) {
  options_.weight = weight;
}
TensorList CrossEntropyLoss::forward_list(const TensorList& in) {
  expect_input_target(in);
  options_.weight = weight;
  return {functional::cross_entropy(in[0], in[1], options_)};
}
NLLLoss::NLLLoss(functional::CrossEntropyOptions o) : WeightedLoss(o.weight, o.reduction), options_(std::move(o)) {
  options_.weight = weight;
}
TensorList NLLLoss::forward_list(const TensorList& in) {
  expect_input_target(in);
  options_.weight = weight;
  return {functional::nll_loss(in[0], in[1], options_)};
}

// ---- BCELoss, BCEWithLogitsLoss ----
TensorList BCELoss::forward_list(const TensorList& in) {
  expect_input_target(in);
  return {functional::binary_cross_entropy(in[0], in[1], weight, reduction_)};
}
BCEWithLogitsLoss::BCEWithLogitsLoss(Tensor w, Tensor pw, functional::Reduction r) : WeightedLoss(std::move(w), r) {
  if (pw.defined()) pos_weight = register_buffer("pos_weight", pw);
}
TensorList BCEWithLogitsLoss::forward_list(const TensorList& in) {
  expect_input_target(in);
  return {functional::binary_cross_entropy_with_logits(in[0], in[1], weight, pos_weight, reduction_)};
}

}  // namespace nnkit::nn
