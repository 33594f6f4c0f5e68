// Linear modules (include/nnkit/nn/linear.h); semantics from torch/nn/modules/linear.py.
#include "nnkit/nn/linear.h"

#include "nn/internal.h"

#include <cmath>

#include "nnkit/nn/functional.h"
#include "nnkit/nn/init.h"
#include "nnkit/ops.h"

namespace nnkit::nn {

// ---- Linear ----
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

// ---- Bilinear ----
Bilinear::Bilinear(int64_t in1, int64_t in2, int64_t out, bool with_bias) : in1_(in1), in2_(in2), out_(out) {
  NNKIT_CHECK(in1 > 0 && in2 > 0 && out > 0, "[Bilinear] feature sizes must be positive");
  weight = register_parameter("weight", empty({out, in1, in2}));
  bias = register_parameter("bias", with_bias ? empty({out}) : Tensor());
  reset_parameters();
}
void Bilinear::reset_parameters() {
  const double bound = 1.0 / std::sqrt(double(in1_));
  init::uniform_(weight, -bound, bound);
  if (bias.defined()) init::uniform_(bias, -bound, bound);
}
TensorList Bilinear::forward_list(const TensorList& in) {
  if (in.size() != 2) fail("expects two inputs (x1, x2), got " + std::to_string(in.size()));
  return {functional::bilinear(in[0], in[1], weight, bias)};
}
std::string Bilinear::extra_repr() const {
  return "in1_features=" + std::to_string(in1_) + ", in2_features=" + std::to_string(in2_) +
         ", out_features=" + std::to_string(out_) + ", bias=" + (bias.defined() ? "True" : "False");
}

}  // namespace nnkit::nn
