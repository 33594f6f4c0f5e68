// Activation modules (include/nnkit/nn/activation.h); semantics from torch/nn/modules/activation.py.
#include "nnkit/nn/activation.h"

namespace nnkit::nn {

Tensor ReLU::forward(const Tensor& x) {
  if (inplace_) {
    Tensor y = x;
    return y.relu_();
  }
  return x.relu();
}

GELU::GELU(std::string approximate) : approximate_(std::move(approximate)) {
  NNKIT_CHECK(approximate_ == "none" || approximate_ == "tanh", "[GELU] approximate must be \"none\" or \"tanh\", got \"",
              approximate_, "\"");
}

std::string LeakyReLU::extra_repr() const { return "negative_slope=" + py_float(slope_); }

}  // namespace nnkit::nn
