#pragma once
// Linear modules (torch/nn/modules/linear.py): Identity, Linear, Bilinear. Parameter names,
// shapes, default initialization and repr follow PyTorch's.
#include <string>

#include "nnkit/nn/module.h"

namespace nnkit::nn {

// Returns its input unchanged: the module for "nothing happens here" (never an empty slot).
class Identity : public Module {
 public:
  Identity() = default;
  Tensor forward(const Tensor& x) override { return x; }
  TensorList forward_list(const TensorList& inputs) override { return inputs; }
};

// y = x W^T + b. weight [out_features, in_features], bias [out_features]; PyTorch's default
// initialization (kaiming_uniform_ with a = sqrt(5), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
class Linear : public Module {
 public:
  struct Options {
    int64_t in_features = 0;
    int64_t out_features = 0;
    bool bias = true;
  };
  explicit Linear(const Options& options);
  Linear(int64_t in_features, int64_t out_features, bool bias = true)
      : Linear(Options{in_features, out_features, bias}) {}

  Tensor forward(const Tensor& x) override;
  void reset_parameters() override;
  std::string extra_repr() const override;
  const Options& options() const { return options_; }

  Tensor weight;
  Tensor bias;  // undefined when options.bias is false

 private:
  Options options_;
};

// y[n, o] = x1[n, :] W[o] x2[n, :]^T + b[o]. Call forward(x1, x2), or the module with {x1, x2}.
class Bilinear : public Module {
 public:
  Bilinear(int64_t in1_features, int64_t in2_features, int64_t out_features, bool bias = true);
  TensorList forward_list(const TensorList& inputs) override;
  Tensor forward(const Tensor& x1, const Tensor& x2) { return forward_list({x1, x2})[0]; }
  using Module::forward;
  void reset_parameters() override;
  std::string extra_repr() const override;

  Tensor weight;  // [out, in1, in2]
  Tensor bias;    // [out]

 private:
  int64_t in1_, in2_, out_;
};

}  // namespace nnkit::nn
