// nn::init, following torch/nn/init.py (fans, gains and bounds).
#include "nnkit/nn/init.h"

#include <Eigen/QR>
#include <cmath>

#include "nnkit/autograd/grad_mode.h"
#include "nnkit/ops.h"
#include "nn/internal.h"

namespace nnkit::nn::init {

namespace {
void check(const Tensor& t, const char* op) {
  NNKIT_CHECK(t.defined(), "[", op, "] cannot initialize an undefined tensor (is the parameter disabled, e.g. bias=false?)");
  NNKIT_CHECK(t.is_floating_point(), "[", op, "] expects a floating-point tensor, got ", t.dtype());
}
// Writes `values` (any device/dtype, same shape) into t in place.
Tensor assign(Tensor& t, const Tensor& values) {
  NoGradGuard g;
  t.copy_(values);
  return t;
}
int64_t fan(const Tensor& t, FanMode mode, const char* op) {
  Fans f = calculate_fan_in_and_fan_out(t);
  int64_t v = mode == FanMode::FanIn ? f.fan_in : f.fan_out;
  NNKIT_CHECK(v > 0, "[", op, "] initializing a zero-element tensor (fan is 0) is not possible");
  return v;
}
}  // namespace

double calculate_gain(Nonlinearity nl, std::optional<double> param) {
  switch (nl) {
    case Nonlinearity::Linear:
    case Nonlinearity::Conv1d:
    case Nonlinearity::Conv2d:
    case Nonlinearity::Conv3d:
    case Nonlinearity::ConvTranspose1d:
    case Nonlinearity::ConvTranspose2d:
    case Nonlinearity::ConvTranspose3d:
    case Nonlinearity::Sigmoid: return 1.0;
    case Nonlinearity::Tanh: return 5.0 / 3.0;
    case Nonlinearity::ReLU: return std::sqrt(2.0);
    case Nonlinearity::LeakyReLU: {
      double slope = param.value_or(0.01);
      return std::sqrt(2.0 / (1 + slope * slope));
    }
    case Nonlinearity::SELU: return 3.0 / 4.0;
  }
  return 1.0;
}

Fans calculate_fan_in_and_fan_out(const Tensor& t) {
  NNKIT_CHECK(t.defined(), "[calculate_fan_in_and_fan_out] undefined tensor");
  NNKIT_CHECK(t.dim() >= 2, "[calculate_fan_in_and_fan_out] fan in and fan out can not be computed for a tensor with "
                            "fewer than 2 dimensions (got shape ", t.sizes(), ")");
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

Tensor uniform_(Tensor t, double a, double b) {
  check(t, "uniform_");
  NNKIT_CHECK(a <= b, "[uniform_] expects a <= b, got a=", a, " b=", b);
  return assign(t, rand(t.sizes(), {.dtype = kFloat64}) * (b - a) + a);
}
Tensor normal_(Tensor t, double mean, double std) {
  check(t, "normal_");
  NNKIT_CHECK(std >= 0, "[normal_] expects std >= 0, got ", std);
  return assign(t, randn(t.sizes(), {.dtype = kFloat64}) * std + mean);
}
Tensor trunc_normal_(Tensor t, double mean, double std, double a, double b) {
  check(t, "trunc_normal_");
  NNKIT_CHECK(a < b, "[trunc_normal_] expects a < b, got a=", a, " b=", b);
  // Rejection sampling: same distribution as PyTorch's inverse-CDF method.
  int64_t n = t.numel();
  std::vector<double> out;
  out.reserve(size_t(n));
  int64_t tries = 0;
  while (int64_t(out.size()) < n) {
    NNKIT_CHECK(++tries < 10000, "[trunc_normal_] the interval [", a, ", ", b, "] has almost no probability mass under N(",
                mean, ", ", std, ")");
    Tensor s = randn({std::max<int64_t>(n, 64)}, {.dtype = kFloat64}) * std + mean;
    for (double v : s.to_vector<double>())
      if (v >= a && v <= b && int64_t(out.size()) < n) out.push_back(v);
  }
  return assign(t, from_vector(out, t.sizes()));
}
Tensor constant_(Tensor t, double v) {
  check(t, "constant_");
  NoGradGuard g;
  t.fill_(v);
  return t;
}
Tensor ones_(Tensor t) { return constant_(std::move(t), 1); }
Tensor zeros_(Tensor t) { return constant_(std::move(t), 0); }
Tensor eye_(Tensor t) {
  check(t, "eye_");
  NNKIT_CHECK(t.dim() == 2, "[eye_] only tensors with 2 dimensions are supported, got shape ", t.sizes());
  return assign(t, eye(t.size(0), t.size(1)));
}
Tensor dirac_(Tensor t, int64_t groups) {
  check(t, "dirac_");
  NNKIT_CHECK(t.dim() >= 3 && t.dim() <= 5, "[dirac_] only tensors with 3, 4, or 5 dimensions are supported, got shape ",
              t.sizes());
  NNKIT_CHECK(groups > 0 && t.size(0) % groups == 0, "[dirac_] dim 0 (", t.size(0), ") must be divisible by groups (",
              groups, ")");
  Tensor v = zeros(t.sizes(), {.dtype = kFloat64});
  int64_t out_per_group = t.size(0) / groups;
  int64_t min_dim = std::min(out_per_group, t.size(1));
  double* p = v.data_ptr<double>();
  const Shape& st = v.strides();
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t d = 0; d < min_dim; ++d) {
      int64_t off = (g * out_per_group + d) * st[0] + d * st[1];
      for (int64_t k = 2; k < t.dim(); ++k) off += (t.size(k) / 2) * st[size_t(k)];
      p[off] = 1;
    }
  return assign(t, v);
}
Tensor xavier_uniform_(Tensor t, double gain) {
  check(t, "xavier_uniform_");
  Fans f = calculate_fan_in_and_fan_out(t);
  double std = gain * std::sqrt(2.0 / double(f.fan_in + f.fan_out));
  double a = std::sqrt(3.0) * std;
  return uniform_(t, -a, a);
}
Tensor xavier_normal_(Tensor t, double gain) {
  check(t, "xavier_normal_");
  Fans f = calculate_fan_in_and_fan_out(t);
  return normal_(t, 0, gain * std::sqrt(2.0 / double(f.fan_in + f.fan_out)));
}
Tensor kaiming_uniform_(Tensor t, const KaimingOptions& o) {
  check(t, "kaiming_uniform_");
  double std = calculate_gain(o.nonlinearity, o.a) / std::sqrt(double(fan(t, o.mode, "kaiming_uniform_")));
  double bound = std::sqrt(3.0) * std;
  return uniform_(t, -bound, bound);
}
Tensor kaiming_normal_(Tensor t, const KaimingOptions& o) {
  check(t, "kaiming_normal_");
  double std = calculate_gain(o.nonlinearity, o.a) / std::sqrt(double(fan(t, o.mode, "kaiming_normal_")));
  return normal_(t, 0, std);
}
Tensor orthogonal_(Tensor t, double gain) {
  check(t, "orthogonal_");
  NNKIT_CHECK(t.dim() >= 2, "[orthogonal_] only tensors with 2 or more dimensions are supported, got shape ", t.sizes());
  if (t.numel() == 0) return t;
  int64_t rows = t.size(0), cols = t.numel() / rows;
  Tensor flat = randn({rows, cols}, {.dtype = kFloat64});
  bool transpose = rows < cols;
  Eigen::MatrixXd m(transpose ? cols : rows, transpose ? rows : cols);
  const double* p = flat.data_ptr<double>();
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) (transpose ? m(j, i) : m(i, j)) = p[i * cols + j];
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(m);
  Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(m.rows(), m.cols());
  Eigen::MatrixXd r = qr.matrixQR().triangularView<Eigen::Upper>();
  for (int64_t j = 0; j < q.cols(); ++j)
    if (r(j, j) < 0) q.col(j) *= -1;  // make Q uniform (PyTorch multiplies by sign(diag(R)))
  std::vector<double> out(size_t(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) out[size_t(i * cols + j)] = gain * (transpose ? q(j, i) : q(i, j));
  return assign(t, from_vector(out, t.sizes()));
}
Tensor sparse_(Tensor t, double sparsity, double std) {
  check(t, "sparse_");
  NNKIT_CHECK(t.dim() == 2, "[sparse_] only tensors with 2 dimensions are supported, got shape ", t.sizes());
  NNKIT_CHECK(sparsity >= 0 && sparsity <= 1, "[sparse_] sparsity must be in [0, 1], got ", sparsity);
  int64_t rows = t.size(0), cols = t.size(1);
  auto zeros_per_col = int64_t(std::ceil(sparsity * double(rows)));
  Tensor v = (randn({rows, cols}, {.dtype = kFloat64}) * std).contiguous();
  double* p = v.data_ptr<double>();
  for (int64_t c = 0; c < cols; ++c) {
    // A random permutation of the rows (keys from rand, sorted), first zeros_per_col zeroed.
    std::vector<double> keys = rand({rows}, {.dtype = kFloat64}).to_vector<double>();
    std::vector<int64_t> idx(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) idx[size_t(i)] = i;
    std::sort(idx.begin(), idx.end(), [&](int64_t x, int64_t y) { return keys[size_t(x)] < keys[size_t(y)]; });
    for (int64_t k = 0; k < zeros_per_col; ++k) p[idx[size_t(k)] * cols + c] = 0;
  }
  return assign(t, v);
}

}  // namespace nnkit::nn::init

namespace nnkit::nn::internal {

void reset_default_parameters(Tensor& weight, Tensor& bias) {
  init::kaiming_uniform_(weight, {.a = std::sqrt(5.0)});
  if (bias.defined()) {
    int64_t fan_in = init::calculate_fan_in_and_fan_out(weight).fan_in;
    double bound = fan_in > 0 ? 1.0 / std::sqrt(double(fan_in)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

}  // namespace nnkit::nn::internal
