#pragma once
// Dropout modules (torch/nn/modules/dropout.py): Dropout, Dropout2d over the shared DropoutNd.
#include <string>

#include "nnkit/nn/functional.h"
#include "nnkit/nn/module.h"

namespace nnkit::nn {

// PyTorch's _DropoutNd: the probability check and the repr every dropout module shares.
class DropoutNd : public Module {
 public:
  std::string extra_repr() const override;

 protected:
  // Checks 0 <= p <= 1 (errors prefixed with [who]).
  DropoutNd(const char* who, double p);
  double p_;
};

class Dropout : public DropoutNd {
 public:
  explicit Dropout(double p = 0.5) : DropoutNd("Dropout", p) {}
  Tensor forward(const Tensor& x) override { return functional::dropout(x, p_, is_training()); }
};

// Zeroes whole channels of [N, C, H, W] or [C, H, W] inputs.
class Dropout2d : public DropoutNd {
 public:
  explicit Dropout2d(double p = 0.5) : DropoutNd("Dropout2d", p) {}
  Tensor forward(const Tensor& x) override { return functional::dropout2d(x, p_, is_training()); }
};

}  // namespace nnkit::nn
