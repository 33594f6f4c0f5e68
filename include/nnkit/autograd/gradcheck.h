#pragma once
// gradcheck: compares the analytical gradients autograd computes with central finite
// differences, in float64. Use it to prove a new op's gradient rule.
#include <functional>
#include <string>

#include "nnkit/core/tensor.h"

namespace nnkit::autograd {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // describes the first mismatch (input, element, analytical, numerical)
  explicit operator bool() const { return ok; }
};

// `fn` maps the inputs to one output tensor (of any shape). The inputs must be float64 tensors;
// those with requires_grad are checked. The output is reduced by a fixed random projection,
// so every output element's gradient is exercised.
GradcheckResult gradcheck(const std::function<Tensor(const TensorList&)>& fn, const TensorList& inputs,
                          const GradcheckOptions& options = {});

}  // namespace nnkit::autograd
