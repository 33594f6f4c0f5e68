#pragma once
// Loss modules (torch/nn/modules/loss.py), called with (input, target): MSELoss, L1Loss,
// CrossEntropyLoss, NLLLoss, BCELoss, BCEWithLogitsLoss over the shared Loss and WeightedLoss.
// Buffer names follow PyTorch's.
#include "nnkit/nn/functional.h"
#include "nnkit/nn/module.h"

namespace nnkit::nn {

// PyTorch's _Loss: the reduction option and the (input, target) call form.
class Loss : public Module {
 public:
  explicit Loss(functional::Reduction reduction) : reduction_(reduction) {}
  Tensor operator()(const Tensor& input, const Tensor& target) { return Module::operator()(TensorList{input, target})[0]; }
  using Module::operator();

 protected:
  // Errors unless `in` is exactly (input, target).
  void expect_input_target(const TensorList& in) const;
  functional::Reduction reduction_;
};

// PyTorch's _WeightedLoss: a Loss with an optional per-class (or per-element) weight,
// registered as the buffer "weight" when given.
class WeightedLoss : public Loss {
 public:
  WeightedLoss(Tensor weight, functional::Reduction reduction);
  Tensor weight;  // undefined when not given
};

class MSELoss : public Loss {
 public:
  explicit MSELoss(functional::Reduction r = functional::Reduction::Mean) : Loss(r) {}
  TensorList forward_list(const TensorList& in) override;
};

class L1Loss : public Loss {
 public:
  explicit L1Loss(functional::Reduction r = functional::Reduction::Mean) : Loss(r) {}
  TensorList forward_list(const TensorList& in) override;
};

class CrossEntropyLoss : public WeightedLoss {
 public:
  explicit CrossEntropyLoss(functional::CrossEntropyOptions options = {});
  TensorList forward_list(const TensorList& in) override;

 private:
  functional::CrossEntropyOptions options_;
};

class NLLLoss : public WeightedLoss {
 public:
  explicit NLLLoss(functional::CrossEntropyOptions options = {});
  TensorList forward_list(const TensorList& in) override;

 private:
  functional::CrossEntropyOptions options_;
};

class BCELoss : public WeightedLoss {
 public:
  explicit BCELoss(Tensor weight = {}, functional::Reduction r = functional::Reduction::Mean) : WeightedLoss(weight, r) {}
  TensorList forward_list(const TensorList& in) override;
};

// PyTorch derives it from _Loss and registers both buffers itself; here the weight comes from
// WeightedLoss (same buffer name and order).
class BCEWithLogitsLoss : public WeightedLoss {
 public:
  explicit BCEWithLogitsLoss(Tensor weight = {}, Tensor pos_weight = {},
                             functional::Reduction r = functional::Reduction::Mean);
  TensorList forward_list(const TensorList& in) override;
  Tensor pos_weight;  // buffer "pos_weight" when given
};

}  // namespace nnkit::nn
