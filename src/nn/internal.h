#pragma once
// Private: shared between the nn implementation files.
#include <string>
#include <utility>
#include <vector>

#include "nnkit/nn/functional.h"
#include "nnkit/nn/module.h"

namespace nnkit::nn::functional {
// A loss's reduction: none, sum or mean (src/nn/functional.cpp).
Tensor reduce_loss(const Tensor& loss, Reduction reduction);
}  // namespace nnkit::nn::functional

namespace nnkit::nn::internal {

// Python's repr of a 2-tuple, "(3, 3)" (src/nn/module.cpp).
std::string pair_str(functional::Pair p);
// The default initialization of PyTorch's Linear and _ConvNd (reset_parameters):
// kaiming_uniform_(a = sqrt(5)) for the weight, uniform(+-1/sqrt(fan_in)) for the bias
// (src/nn/init.cpp).
void reset_default_parameters(Tensor& weight, Tensor& bias);

// Marks `m` as running (for the construction-in-forward check and error paths).
struct CallGuard {
  explicit CallGuard(const Module* m);
  ~CallGuard();
  CallGuard(const CallGuard&) = delete;
  CallGuard& operator=(const CallGuard&) = delete;
};

// Errors if a module created in m's constructor is still not registered under m.
void check_unregistered(const Module& m, std::vector<std::pair<const Module*, std::string>>& pending);

}  // namespace nnkit::nn::internal
