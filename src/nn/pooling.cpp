// Pooling modules (include/nnkit/nn/pooling.h); semantics from torch/nn/modules/pooling.py.
#include "nnkit/nn/pooling.h"

#include "nn/internal.h"

namespace nnkit::nn {

namespace {
// PyTorch prints a pooling size as an int when both sides agree, else as a tuple.
std::string pool_arg(Pair p) { return p.h == p.w ? std::to_string(p.h) : internal::pair_str(p); }
}  // namespace

MaxPool2d::MaxPool2d(Pair k, std::optional<Pair> s, Pair p, bool ceil_mode) : options_{k, s.value_or(k), p, ceil_mode} {}
Tensor MaxPool2d::forward(const Tensor& x) { return functional::max_pool2d(x, options_); }
std::string MaxPool2d::extra_repr() const {
  return "kernel_size=" + pool_arg(options_.kernel_size) + ", stride=" + pool_arg(*options_.stride) +
         ", padding=" + pool_arg(options_.padding) + ", dilation=1, ceil_mode=" + (options_.ceil_mode ? "True" : "False");
}

AvgPool2d::AvgPool2d(Pair k, std::optional<Pair> s, Pair p, bool ceil_mode) : options_{k, s.value_or(k), p, ceil_mode} {}
Tensor AvgPool2d::forward(const Tensor& x) { return functional::avg_pool2d(x, options_); }
std::string AvgPool2d::extra_repr() const {
  return "kernel_size=" + pool_arg(options_.kernel_size) + ", stride=" + pool_arg(*options_.stride) +
         ", padding=" + pool_arg(options_.padding);
}

std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + pool_arg(output_size_); }

}  // namespace nnkit::nn
