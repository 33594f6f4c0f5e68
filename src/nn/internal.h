#pragma once
// Private: shared between the nn implementation files.
#include <string>
#include <utility>
#include <vector>

#include "nnkit/nn/functional.h"
#include "nnkit/nn/module.h"

namespace nnkit::nn {
// Convolution with "same"/"valid"/explicit padding in any padding mode (src/nn/more_layers.cpp).
Tensor padded_conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, functional::Pair stride,
                     const functional::Padding& padding, functional::Pair dilation, int64_t groups,
                     const std::string& mode);
}  // namespace nnkit::nn

namespace nnkit::nn::internal {

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
