#pragma once
// Stochastic gradient descent with PyTorch's update rule (torch.optim.SGD):
//   g = grad (+ weight_decay * p);  momentum: b = momentum * b + (1 - dampening) * g (b = g on
//   the first step);  nesterov: g = g + momentum * b, else g = b;  p -= lr * g (+= if maximize).
#include <vector>

#include "nnkit/core/tensor.h"

namespace nnkit::optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
  bool maximize = false;
};

class SGD {
 public:
  SGD(TensorList params, const SGDOptions& options);
  void zero_grad(bool set_to_none = true);
  void step();
  const SGDOptions& options() const { return options_; }
  SGDOptions& options() { return options_; }
  const TensorList& params() const { return params_; }
  // Momentum buffers, one per parameter (undefined until its first step).
  const TensorList& momentum_buffers() const { return buffers_; }

 private:
  TensorList params_;
  TensorList buffers_;
  SGDOptions options_;
};

}  // namespace nnkit::optim
