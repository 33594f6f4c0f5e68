#include "nnkit/nn/layers.h"

#include "nn/internal.h"

#include <charconv>
#include <cmath>

#include "nnkit/autograd/grad_mode.h"
#include "nnkit/nn/init.h"

namespace nnkit::nn {

std::string py_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  std::string s(buf, r.ptr);
  // Python switches to exponent notation below 1e-4 and from 1e16; to_chars picks the shorter.
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string internal::pair_str(Pair p) { return "(" + std::to_string(p.h) + ", " + std::to_string(p.w) + ")"; }

void internal::check_conv_options(const char* who, int64_t in, int64_t out, int64_t groups, const std::string& mode) {
  NNKIT_CHECK(in > 0 && out > 0, "[", who, "] in_channels and out_channels must be positive, got ", in, " and ", out);
  NNKIT_CHECK(groups > 0 && in % groups == 0 && out % groups == 0, "[", who, "] in_channels (", in,
              ") and out_channels (", out, ") must be divisible by groups (", groups, ")");
  NNKIT_CHECK(mode == "zeros" || mode == "reflect" || mode == "replicate" || mode == "circular", "[", who,
              "] padding_mode must be zeros, reflect, replicate or circular, got '", mode, "'");
}

void internal::reset_default_parameters(Tensor& weight, Tensor& bias) {
  init::kaiming_uniform_(weight, {.a = std::sqrt(5.0)});
  if (bias.defined()) {
    int64_t fan_in = init::calculate_fan_in_and_fan_out(weight).fan_in;
    double bound = fan_in > 0 ? 1.0 / std::sqrt(double(fan_in)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

namespace {
using internal::pair_str;
std::string pool_arg(Pair p) { return p.h == p.w ? std::to_string(p.h) : pair_str(p); }
}  // namespace

// ---- Conv2d ----
Conv2d::Conv2d(const Options& o) : options_(o) {
  internal::check_conv_options("Conv2d", o.in_channels, o.out_channels, o.groups, o.padding_mode);
  NNKIT_CHECK(o.kernel_size.h > 0 && o.kernel_size.w > 0, "[Conv2d] kernel_size must be positive");
  NNKIT_CHECK(o.padding.kind != Padding::Kind::Same || o.stride == Pair(1),
              "[Conv2d] padding='same' is not supported for strided convolutions");
  weight = register_parameter("weight", empty({o.out_channels, o.in_channels / o.groups, o.kernel_size.h, o.kernel_size.w}));
  bias = register_parameter("bias", o.bias ? empty({o.out_channels}) : Tensor());
  reset_parameters();
}

void Conv2d::reset_parameters() { internal::reset_default_parameters(weight, bias); }

Tensor Conv2d::forward(const Tensor& x) {
  if (x.dim() != 4 || x.size(1) != options_.in_channels)
    fail(nnkit::detail::concat("expected input [N, ", options_.in_channels, ", H, W], got shape ", x.sizes()));
  return padded_conv2d(x, weight, bias, options_.stride, options_.padding, options_.dilation, options_.groups,
                       options_.padding_mode);
}

std::string Conv2d::extra_repr() const {
  const Options& o = options_;
  std::string s = std::to_string(o.in_channels) + ", " + std::to_string(o.out_channels) +
                  ", kernel_size=" + pair_str(o.kernel_size) + ", stride=" + pair_str(o.stride);
  if (o.padding.kind == Padding::Kind::Same) s += ", padding=same";
  else if (o.padding.kind == Padding::Kind::Valid) s += ", padding=valid";
  else if (!(o.padding.value == Pair(0))) s += ", padding=" + pair_str(o.padding.value);
  if (!(o.dilation == Pair(1))) s += ", dilation=" + pair_str(o.dilation);
  if (o.groups != 1) s += ", groups=" + std::to_string(o.groups);
  if (!bias.defined()) s += ", bias=False";
  if (o.padding_mode != "zeros") s += ", padding_mode=" + o.padding_mode;
  return s;
}

// ---- BatchNorm ----
BatchNorm::BatchNorm(const Options& o, int64_t lo, int64_t hi) : options_(o), dim_lo_(lo), dim_hi_(hi) {
  NNKIT_CHECK(o.num_features > 0, "[BatchNorm] num_features must be positive, got ", o.num_features);
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

void BatchNorm::reset_running_stats() {
  if (!options_.track_running_stats) return;
  NoGradGuard g;
  running_mean.zero_();
  running_var.fill_(1);
  num_batches_tracked.zero_();
}

void BatchNorm::reset_parameters() {
  reset_running_stats();
  if (options_.affine) {
    init::ones_(weight);
    init::zeros_(bias);
  }
}

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

std::string BatchNorm::extra_repr() const {
  const Options& o = options_;
  return std::to_string(o.num_features) + ", eps=" + py_float(o.eps) +
         ", momentum=" + (o.momentum ? py_float(*o.momentum) : "None") + ", affine=" + (o.affine ? "True" : "False") +
         ", track_running_stats=" + (o.track_running_stats ? "True" : "False");
}

// ---- GroupNorm / LayerNorm ----
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

// ---- pooling, dropout ----
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

Dropout::Dropout(double p) : p_(p) {
  NNKIT_CHECK(p >= 0 && p <= 1, "[Dropout] dropout probability has to be between 0 and 1, but got ", p);
}
std::string Dropout::extra_repr() const { return "p=" + py_float(p_) + ", inplace=False"; }

}  // namespace nnkit::nn
