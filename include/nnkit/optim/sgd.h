#pragma once
// Stochastic gradient descent with PyTorch's update rule (torch.optim.SGD):
//   g = grad (+ weight_decay * p);  momentum: b = momentum * b + (1 - dampening) * g (b = g on
//   the first step);  nesterov: g = g + momentum * b, else g = b;  p -= lr * g (+= if maximize).
#include "nnkit/optim/optimizer.h"

namespace nnkit::optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
  bool maximize = false;
};

class SGD : public detail::Impl<SGDOptions> {
 public:
  SGD(TensorList params, const SGDOptions& options)
      : SGD(std::vector<ParamGroup<SGDOptions>>{{std::move(params), std::nullopt}}, options) {}
  SGD(std::vector<ParamGroup<SGDOptions>> groups, const SGDOptions& defaults);
  void step() override;
  std::optional<double> momentum(size_t g = 0) const override { return options_.at(g).momentum; }
  void set_momentum(double v, size_t g) override { options_.at(g).momentum = v; }

 protected:
  std::vector<std::pair<std::string, double>> group_options(size_t g) const override;
  void set_group_options(size_t g, const std::map<std::string, double>& v) override;
};

}  // namespace nnkit::optim
