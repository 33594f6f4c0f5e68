#pragma once
// Pooling modules (torch/nn/modules/pooling.py): MaxPool2d, AvgPool2d, AdaptiveAvgPool2d.
// Options and repr follow PyTorch's.
#include <optional>
#include <string>

#include "nnkit/nn/functional.h"
#include "nnkit/nn/module.h"

namespace nnkit::nn {

using functional::Pair;

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Pair kernel_size, std::optional<Pair> stride = std::nullopt, Pair padding = 0,
                     bool ceil_mode = false);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  functional::Pool2dOptions options_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Pair kernel_size, std::optional<Pair> stride = std::nullopt, Pair padding = 0,
                     bool ceil_mode = false);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  functional::Pool2dOptions options_;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Pair output_size) : output_size_(output_size) {}
  Tensor forward(const Tensor& x) override { return functional::adaptive_avg_pool2d(x, output_size_); }
  std::string extra_repr() const override;

 private:
  Pair output_size_;
};

}  // namespace nnkit::nn
