#include "nnkit/nn/linear.h"

#include "nn/internal.h"

#include <cmath>

#include "nnkit/nn/activation.h"
#include "nnkit/nn/init.h"
#include "nnkit/ops.h"

namespace nnkit::nn {

Linear::Linear(const Options& o) : options_(o) {
  NNKIT_CHECK(o.in_features >= 0 && o.out_features >= 0, "[Linear] in_features and out_features must be >= 0, got ",
              o.in_features, " and ", o.out_features);
  weight = register_parameter("weight", empty({o.out_features, o.in_features}));
  bias = register_parameter("bias", o.bias ? empty({o.out_features}) : Tensor());
  reset_parameters();
}

void Linear::reset_parameters() {
  // torch.nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  internal::reset_default_parameters(weight, bias);
}

Tensor Linear::forward(const Tensor& x) {
  if (x.dim() == 0 || x.size(-1) != options_.in_features)
    fail(nnkit::detail::concat("expected input with last dimension in_features=", options_.in_features, ", got shape ",
                               x.sizes()));
  Tensor y = x.dim() == 2 ? x.mm(weight.t()) : x.matmul(weight.t());
  return bias.defined() ? y + bias : y;
}

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(options_.in_features) + ", out_features=" +
         std::to_string(options_.out_features) + ", bias=" + (bias.defined() ? "True" : "False");
}

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

}  // namespace nnkit::nn
