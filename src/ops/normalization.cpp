// Normalization: batch_norm (the backend's fused kernels, batch statistics in training and
// running statistics in evaluation, PyTorch's running-statistics update), and group_norm,
// layer_norm and instance_norm composed from differentiable ops.
#include "autograd/function.h"
#include "backend/backend.h"
#include "nnkit/autograd/grad_mode.h"
#include "nnkit/nn/functional.h"
#include "nnkit/ops.h"
#include "ops/common.h"

namespace nnkit::nn::functional {

using autograd::make_node;
using autograd::needs_grad;
using autograd::requires_grad;
using autograd::SavedTensor;
using autograd::set_history;

namespace {
// PyTorch's running-statistics rule (both devices): num_batches_tracked += 1; with a momentum m,
// running = (1 - m) * running + m * batch statistic, without one the cumulative average
// (m = 1 / num_batches_tracked). batch_var is the unbiased variance. Call under NoGradGuard.
void update_running_stats(const Tensor& running_mean, const Tensor& running_var, const Tensor& num_batches_tracked,
                          std::optional<double> momentum, const Tensor& batch_mean, const Tensor& batch_var) {
  double m = momentum.value_or(0.0);
  if (num_batches_tracked.defined()) {
    Tensor nbt = num_batches_tracked;
    nbt.add_(1.0);
    if (!momentum) m = 1.0 / double(nbt.item<int64_t>());
  }
  Tensor rm = running_mean, rv = running_var;
  rm.mul_(1 - m).add_(batch_mean.to(rm.device(), rm.dtype()), m);
  rv.mul_(1 - m).add_(batch_var.to(rv.device(), rv.dtype()), m);
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, std::optional<double> momentum, double eps,
                  const Tensor& num_batches_tracked) {
  nnkit::detail::check_defined(x, "batch_norm");
  NNKIT_CHECK(x.dim() >= 2, "[batch_norm] expected input with at least 2 dims [N, C, ...], got shape ", x.sizes());
  NNKIT_CHECK(x.is_floating_point(), "[batch_norm] expected a floating-point input, got ", x.dtype());
  const int64_t C = x.size(1);
  for (const Tensor* t : {&running_mean, &running_var, &weight, &bias})
    if (t->defined()) {
      NNKIT_CHECK(t->dim() == 1 && t->size(0) == C, "[batch_norm] expected per-channel tensors of shape [", C,
                  "], got ", t->sizes(), " (input shape ", x.sizes(), ")");
      nnkit::detail::check_same_device(x, *t, "batch_norm");
    }
  for (const Tensor* t : {&weight, &bias})
    if (t->defined())
      NNKIT_CHECK(t->dtype() == x.dtype(), "[batch_norm] weight and bias must have the input's dtype ", x.dtype(),
                  ", got ", t->dtype());
  const int64_t N = x.size(0), S = C > 0 && N > 0 ? x.numel() / (N * C) : 0;
  const int64_t M = N * S;  // values per channel
  const TensorOptions opts{.dtype = x.dtype(), .device = x.device()};
  const nnkit::detail::Backend& be = nnkit::detail::backend(x);
  const bool batch_stats = training || !running_mean.defined();
  if (!batch_stats) {
    NNKIT_CHECK(running_var.defined(), "[batch_norm] running_mean is given but running_var is undefined");
    Shape bshape = Shape::filled(size_t(x.dim()), 1);  // per-channel tensors as [1, C, 1, ...]
    bshape[1] = C;
    Tensor invstd = running_var.detach().to(kFloat64).add(eps).rsqrt();
    if (needs_grad(x, weight, bias)) {
      // Differentiable composition: (x - mean) * invstd * weight + bias.
      Tensor y = (x - running_mean.detach().to(x.dtype()).reshape(bshape)) * invstd.to(x.dtype()).reshape(bshape);
      if (weight.defined()) y = y * weight.reshape(bshape);
      if (bias.defined()) y = y + bias.reshape(bshape);
      return y;
    }
    // One fused pass: y = x * scale + shift, the per-channel factors in float64.
    Tensor scale = weight.defined() ? weight.detach().to(kFloat64).mul(invstd) : invstd;
    Tensor shift = running_mean.detach().to(kFloat64).mul(scale).neg();
    if (bias.defined()) shift = shift.add(bias.detach().to(kFloat64));
    Tensor y = empty(x.sizes(), opts);
    if (y.numel() > 0) be.batch_norm_apply(x.detach().contiguous(), scale.contiguous(), shift.contiguous(), y);
    return y;
  }
  NNKIT_CHECK(M > 1, "[batch_norm] expected more than 1 value per channel when training, got input shape ", x.sizes());
  Tensor xc = x.detach().contiguous();
  Tensor wc = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = empty(x.sizes(), opts), save_mean, save_invstd, batch_mean, batch_var;
  const bool update = training && running_mean.defined();
  be.batch_norm_train(xc, wc, bc, eps, y, save_mean, save_invstd, update, batch_mean, batch_var);
  if (update) {
    NoGradGuard g;
    update_running_stats(running_mean, running_var, num_batches_tracked, momentum, batch_mean, batch_var);
  }
  if (needs_grad(x, weight, bias)) {
    const bool gx = requires_grad(x), gw = requires_grad(weight), gb = requires_grad(bias);
    // The weight's values at forward time.
    Tensor w_saved = wc.defined() ? wc.clone() : Tensor();
    auto node = make_node("NativeBatchNormBackward0", {&x, &weight, &bias},
                          [=, sx = SavedTensor(xc)](autograd::Node& self, TensorList&& grads) {
                            Tensor xs = sx.unpack(autograd::running_node(self));
                            Tensor dy = grads[0].detach().contiguous();
                            nnkit::detail::check_same_device(xs, dy, "batch_norm_backward");
                            const TensorOptions o{.dtype = xs.dtype(), .device = xs.device()};
                            Tensor dx = gx ? empty(xs.sizes(), o) : Tensor();
                            Tensor dw = gw ? empty({C}, o) : Tensor();
                            Tensor db = gb ? empty({C}, o) : Tensor();
                            nnkit::detail::backend(xs).batch_norm_backward(xs, dy, w_saved, save_mean, save_invstd,
                                                                           eps, dx, dw, db);
                            return TensorList{dx, dw, db};
                          });
    set_history(y, std::move(node));
  }
  return y;
}

Tensor group_norm(const Tensor& x, int64_t G, const Tensor& weight, const Tensor& bias, double eps) {
  nnkit::detail::check_defined(x, "group_norm");
  NNKIT_CHECK(x.dim() >= 2, "[group_norm] expected input with at least 2 dims [N, C, ...], got shape ", x.sizes());
  int64_t N = x.size(0), C = x.size(1);
  NNKIT_CHECK(G > 0 && C % G == 0, "[group_norm] expected the number of channels (", C,
              ") to be divisible by num_groups (", G, ")");
  Tensor xg = x.reshape({N, G, -1});
  Tensor mean = xg.mean(2, true), var = xg.var(2, 0, true);
  Tensor y = ((xg - mean) * (var + eps).rsqrt()).reshape(x.sizes());
  Shape bshape = Shape::filled(size_t(x.dim()), 1);
  bshape[1] = C;
  if (weight.defined()) y = y * weight.view(bshape);
  if (bias.defined()) y = y + bias.view(bshape);
  return y;
}

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias, double eps) {
  nnkit::detail::check_defined(x, "layer_norm");
  int64_t k = int64_t(normalized_shape.size());
  NNKIT_CHECK(k >= 1 && x.dim() >= k, "[layer_norm] normalized_shape ", normalized_shape, " does not fit input shape ",
              x.sizes());
  for (int64_t i = 0; i < k; ++i)
    NNKIT_CHECK(x.size(x.dim() - k + i) == normalized_shape[size_t(i)], "[layer_norm] input shape ", x.sizes(),
                " does not end with normalized_shape ", normalized_shape);
  Shape dims;
  for (int64_t i = x.dim() - k; i < x.dim(); ++i) dims.push_back(i);
  Tensor y = (x - x.mean(dims, true)) * (x.var(dims, 0, true) + eps).rsqrt();
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

Tensor instance_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  NNKIT_CHECK(x.dim() >= 3, "[instance_norm] expects [N, C, ...], got shape ", x.sizes());
  Shape dims;
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  Tensor mean = x.mean(dims, true);
  Tensor var = x.var(dims, 0, true);
  Tensor y = (x - mean) * (var + eps).rsqrt();
  if (weight.defined()) {
    Shape s = Shape::filled(size_t(x.dim()), 1);
    s[1] = x.size(1);
    y = y * weight.view(s) + bias.view(s);
  }
  return y;
}

}  // namespace nnkit::nn::functional
