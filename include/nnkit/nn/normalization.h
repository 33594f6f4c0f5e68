#pragma once
// Normalization modules (torch/nn/modules/{batchnorm,instancenorm,normalization}.py):
// BatchNorm1d, BatchNorm2d and InstanceNorm2d over the shared NormBase; GroupNorm, LayerNorm.
// Parameter and buffer names, shapes, default initialization and repr follow PyTorch's.
#include <optional>
#include <string>

#include "nnkit/nn/functional.h"
#include "nnkit/nn/module.h"

namespace nnkit::nn {

// PyTorch's _NormBase: the options, the weight/bias parameters (when affine) and the
// running_mean/running_var/num_batches_tracked buffers (when track_running_stats; the last an
// int64 scalar), reset_parameters and extra_repr that BatchNorm and InstanceNorm share.
class NormBase : public Module {
 public:
  struct Options {
    int64_t num_features = 0;
    double eps = 1e-5;
    std::optional<double> momentum = 0.1;  // nullopt = cumulative average
    bool affine = true;
    bool track_running_stats = true;
  };
  void reset_parameters() override;
  void reset_running_stats();
  std::string extra_repr() const override;
  const Options& options() const { return options_; }

  Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 protected:
  // Checks the options (errors prefixed with [who]), registers the parameters and buffers.
  NormBase(const char* who, const Options& options);
  Options options_;
};

// BatchNorm over [N, C, ...] (PyTorch's _BatchNorm): batch statistics in training, running
// statistics in eval when tracked.
class BatchNorm : public NormBase {
 public:
  BatchNorm(const Options& options, int64_t expected_dim_lo, int64_t expected_dim_hi);
  Tensor forward(const Tensor& x) override;

 private:
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

// Normalizes each (sample, channel) over its spatial positions; no running statistics.
class InstanceNorm2d : public NormBase {
 public:
  // PyTorch's defaults: affine=False, track_running_stats=False.
  explicit InstanceNorm2d(int64_t num_features, double eps = 1e-5, bool affine = false);
  Tensor forward(const Tensor& x) override;
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

}  // namespace nnkit::nn
