#pragma once
// Convolution modules (torch/nn/modules/conv.py): Conv1d, Conv2d, ConvTranspose2d over the
// shared ConvNd base. Parameter names, shapes, default initialization and repr follow PyTorch's.
#include <string>

#include "nnkit/nn/functional.h"
#include "nnkit/nn/module.h"

namespace nnkit::nn {

using functional::Padding;
using functional::Pair;

// PyTorch's _ConvNd: the option checks, the weight and bias, reset_parameters and extra_repr
// that every convolution shares. Subclasses describe themselves as a 2-D Spec (a 1-D
// convolution has height 1) and keep their own Options.
class ConvNd : public Module {
 public:
  void reset_parameters() override;
  std::string extra_repr() const override;

  Tensor weight;  // [out_channels, in_channels / groups, k...] ([in_channels, out_channels / groups, k...] when transposed)
  Tensor bias;    // [out_channels], undefined when the bias option is false

 protected:
  struct Spec {
    int64_t dims = 2;  // 1 or 2; a 1-D convolution keeps its sizes in the .w of each Pair
    bool transposed = false;
    int64_t in_channels = 0;
    int64_t out_channels = 0;
    Pair kernel_size = 1;
    Pair stride = 1;
    Padding padding = 0;
    Pair dilation = 1;
    Pair output_padding = 0;
    int64_t groups = 1;
    bool bias = true;
    std::string padding_mode = "zeros";
  };
  // Checks the options (errors prefixed with [who]), registers weight and bias and initializes them.
  ConvNd(const char* who, const Spec& spec);
  // Convolves a 4-D input with the spec's stride, padding ("same"/"valid"/sizes), dilation,
  // groups and padding mode; `w` is the weight as 4-D.
  Tensor conv_forward(const Tensor& x, const Tensor& w) const;
  const Spec& spec() const { return spec_; }

 private:
  Spec spec_;
};

// x [N, in_channels, L]; weight [out_channels, in_channels / groups, kernel_size].
class Conv1d : public ConvNd {
 public:
  struct Options {
    int64_t in_channels = 0;
    int64_t out_channels = 0;
    int64_t kernel_size = 1;
    int64_t stride = 1;
    Padding padding = 0;
    int64_t dilation = 1;
    int64_t groups = 1;
    bool bias = true;
    std::string padding_mode = "zeros";  // zeros, reflect, replicate, circular
  };
  explicit Conv1d(const Options& options);
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : Conv1d(Options{.in_channels = in_channels, .out_channels = out_channels, .kernel_size = kernel_size}) {}
  Tensor forward(const Tensor& x) override;
  const Options& options() const { return options_; }

 private:
  Options options_;
};

// x [N, in_channels, H, W]; weight [out_channels, in_channels / groups, kh, kw].
class Conv2d : public ConvNd {
 public:
  struct Options {
    int64_t in_channels = 0;
    int64_t out_channels = 0;
    Pair kernel_size = 1;
    Pair stride = 1;
    Padding padding = 0;  // sizes, "same" or "valid"
    Pair dilation = 1;
    int64_t groups = 1;
    bool bias = true;
    std::string padding_mode = "zeros";  // zeros, reflect, replicate or circular
  };
  explicit Conv2d(const Options& options);
  Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel_size)
      : Conv2d(Options{.in_channels = in_channels, .out_channels = out_channels, .kernel_size = kernel_size}) {}
  Tensor forward(const Tensor& x) override;
  const Options& options() const { return options_; }

 private:
  Options options_;
};

// The transpose (adjoint) of Conv2d: x [N, in_channels, H, W]; weight
// [in_channels, out_channels / groups, kh, kw].
class ConvTranspose2d : public ConvNd {
 public:
  struct Options {
    int64_t in_channels = 0;
    int64_t out_channels = 0;
    Pair kernel_size = 1;
    Pair stride = 1;
    Pair padding = 0;
    Pair output_padding = 0;
    int64_t groups = 1;
    bool bias = true;
    Pair dilation = 1;
  };
  explicit ConvTranspose2d(const Options& options);
  Tensor forward(const Tensor& x) override;
  const Options& options() const { return options_; }

 private:
  Options options_;
};

}  // namespace nnkit::nn
