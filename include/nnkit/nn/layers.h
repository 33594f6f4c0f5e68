#pragma once
// Convolution, normalization, pooling and shape layers. Parameter and buffer names, shapes,
// default initialization and repr follow PyTorch's.
#include <optional>
#include <string>

#include "nnkit/nn/functional.h"
#include "nnkit/nn/module.h"

namespace nnkit::nn {

using functional::Padding;
using functional::Pair;

class Conv2d : public Module {
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
  void reset_parameters() override;
  std::string extra_repr() const override;
  const Options& options() const { return options_; }

  Tensor weight;  // [out_channels, in_channels / groups, kh, kw]
  Tensor bias;    // [out_channels], undefined when options.bias is false

 private:
  Options options_;
};

// BatchNorm over [N, C, ...]: running_mean/running_var/num_batches_tracked buffers (the last an
// int64 scalar), weight/bias parameters when affine. momentum nullopt = cumulative average.
class BatchNorm : public Module {
 public:
  struct Options {
    int64_t num_features = 0;
    double eps = 1e-5;
    std::optional<double> momentum = 0.1;
    bool affine = true;
    bool track_running_stats = true;
  };
  BatchNorm(const Options& options, int64_t expected_dim_lo, int64_t expected_dim_hi);
  Tensor forward(const Tensor& x) override;
  void reset_parameters() override;
  void reset_running_stats();
  std::string extra_repr() const override;
  const Options& options() const { return options_; }

  Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  Options options_;
  int64_t dim_lo_, dim_hi_;
};

class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(const Options& o) : BatchNorm(o, 2, 3) {}
  explicit BatchNorm1d(int64_t num_features) : BatchNorm1d(Options{.num_features = num_features}) {}
};
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(const Options& o) : BatchNorm(o, 4, 4) {}
  explicit BatchNorm2d(int64_t num_features) : BatchNorm2d(Options{.num_features = num_features}) {}
};

class GroupNorm : public Module {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) override;
  void reset_parameters() override;
  std::string extra_repr() const override;
  Tensor weight, bias;

 private:
  int64_t num_groups_, num_channels_;
  double eps_;
  bool affine_;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true);
  Tensor forward(const Tensor& x) override;
  void reset_parameters() override;
  std::string extra_repr() const override;
  Tensor weight, bias;

 private:
  Shape shape_;
  double eps_;
  bool affine_;
};

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

class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_(start_dim), end_(end_dim) {}
  Tensor forward(const Tensor& x) override { return x.flatten(start_, end_); }
  std::string extra_repr() const override {
    return "start_dim=" + std::to_string(start_) + ", end_dim=" + std::to_string(end_);
  }

 private:
  int64_t start_, end_;
};

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override { return functional::dropout(x, p_, is_training()); }
  std::string extra_repr() const override;

 private:
  double p_;
};

// Python's repr of a float: shortest round-trip form, "1e-05", "0.1", "1.0".
std::string py_float(double v);

}  // namespace nnkit::nn
