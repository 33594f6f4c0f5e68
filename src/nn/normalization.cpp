// Normalization modules (include/nnkit/nn/normalization.h); semantics from
// torch/nn/modules/{batchnorm,instancenorm,normalization}.py.
#include "nnkit/nn/normalization.h"

#include "nnkit/autograd/grad_mode.h"
#include "nnkit/nn/init.h"

namespace nnkit::nn {

// ---- NormBase ----
NormBase::NormBase(const char* who, const Options& o) : options_(o) {
  NNKIT_CHECK(o.num_features > 0, "[", who, "] num_features must be positive, got ", o.num_features);
  if (o.affine) {
    weight = register_parameter("weight", empty({o.num_features}));
    bias = register_parameter("bias", empty({o.num_features}));
  }
  if (o.track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({o.num_features}));
    running_var = register_buffer("running_var", ones({o.num_features}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, {.dtype = kInt64}));
  }
  reset_parameters();
}

void NormBase::reset_running_stats() {
  if (!options_.track_running_stats) return;
  NoGradGuard g;
  running_mean.zero_();
  running_var.fill_(1);
  num_batches_tracked.zero_();
}

void NormBase::reset_parameters() {
  reset_running_stats();
  if (options_.affine) {
    init::ones_(weight);
    init::zeros_(bias);
  }
}

std::string NormBase::extra_repr() const {
  const Options& o = options_;
  return std::to_string(o.num_features) + ", eps=" + py_float(o.eps) +
         ", momentum=" + (o.momentum ? py_float(*o.momentum) : "None") + ", affine=" + (o.affine ? "True" : "False") +
         ", track_running_stats=" + (o.track_running_stats ? "True" : "False");
}

// ---- BatchNorm ----
BatchNorm::BatchNorm(const Options& o, int64_t lo, int64_t hi) : NormBase("BatchNorm", o), dim_lo_(lo), dim_hi_(hi) {}

Tensor BatchNorm::forward(const Tensor& x) {
  if (x.dim() < dim_lo_ || x.dim() > dim_hi_)
    fail(nnkit::detail::concat("expected ", dim_lo_ == dim_hi_ ? std::to_string(dim_lo_) + "D" :
                                   std::to_string(dim_lo_) + "D or " + std::to_string(dim_hi_) + "D",
                               " input (got ", x.dim(), "D input of shape ", x.sizes(), ")"));
  if (x.size(1) != options_.num_features)
    fail(nnkit::detail::concat("expected ", options_.num_features, " channels, got input of shape ", x.sizes()));
  bool use_batch = is_training() || !options_.track_running_stats;
  return functional::batch_norm(x, running_mean, running_var, weight, bias, use_batch && is_training(),
                                options_.momentum, options_.eps, num_batches_tracked);
}

// ---- InstanceNorm2d ----
InstanceNorm2d::InstanceNorm2d(int64_t num_features, double eps, bool affine)
    : NormBase("InstanceNorm2d", {.num_features = num_features,
                                  .eps = eps,
                                  .momentum = 0.1,
                                  .affine = affine,
                                  .track_running_stats = false}) {}

Tensor InstanceNorm2d::forward(const Tensor& x) {
  const int64_t c = options_.num_features;
  if ((x.dim() != 4 && x.dim() != 3) || x.size(-3) != c)
    fail(nnkit::detail::concat("expected input [N, ", c, ", H, W] or [", c, ", H, W], got shape ", x.sizes()));
  if (x.dim() == 3) return functional::instance_norm(x.unsqueeze(0), weight, bias, options_.eps).squeeze(0);
  return functional::instance_norm(x, weight, bias, options_.eps);
}

// ---- GroupNorm ----
GroupNorm::GroupNorm(int64_t g, int64_t c, double eps, bool affine)
    : num_groups_(g), num_channels_(c), eps_(eps), affine_(affine) {
  NNKIT_CHECK(g > 0 && c % g == 0, "[GroupNorm] num_channels (", c, ") must be divisible by num_groups (", g, ")");
  if (affine) {
    weight = register_parameter("weight", empty({c}));
    bias = register_parameter("bias", empty({c}));
  }
  reset_parameters();
}
void GroupNorm::reset_parameters() {
  if (affine_) {
    init::ones_(weight);
    init::zeros_(bias);
  }
}
Tensor GroupNorm::forward(const Tensor& x) {
  if (x.dim() < 2 || x.size(1) != num_channels_)
    fail(nnkit::detail::concat("expected input [N, ", num_channels_, ", ...], got shape ", x.sizes()));
  return functional::group_norm(x, num_groups_, weight, bias, eps_);
}
std::string GroupNorm::extra_repr() const {
  return std::to_string(num_groups_) + ", " + std::to_string(num_channels_) + ", eps=" + py_float(eps_) +
         ", affine=" + (affine_ ? "True" : "False");
}

// ---- LayerNorm ----
LayerNorm::LayerNorm(Shape shape, double eps, bool affine) : shape_(std::move(shape)), eps_(eps), affine_(affine) {
  NNKIT_CHECK(!shape_.empty(), "[LayerNorm] normalized_shape must be non-empty");
  if (affine) {
    weight = register_parameter("weight", empty(shape_));
    bias = register_parameter("bias", empty(shape_));
  }
  reset_parameters();
}
void LayerNorm::reset_parameters() {
  if (affine_) {
    init::ones_(weight);
    init::zeros_(bias);
  }
}
Tensor LayerNorm::forward(const Tensor& x) { return functional::layer_norm(x, shape_, weight, bias, eps_); }
std::string LayerNorm::extra_repr() const {
  std::string s = "(";
  for (size_t i = 0; i < shape_.size(); ++i) s += (i ? ", " : "") + std::to_string(shape_[i]);
  if (shape_.size() == 1) s += ",";
  return s + "), eps=" + py_float(eps_) + ", elementwise_affine=" + (affine_ ? "True" : "False");
}

}  // namespace nnkit::nn
