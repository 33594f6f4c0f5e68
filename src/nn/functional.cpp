// nn::functional: linear, activations, dropout and the losses, composed from ops. The ops with
// kernels of their own live in the ops layer: src/ops/conv.cpp, pooling.cpp, normalization.cpp.
#include "nnkit/nn/functional.h"

#include <cmath>
#include <limits>

#include "autograd/function.h"
#include "nnkit/autograd/grad_mode.h"
#include "nn/internal.h"
#include "ops/common.h"

namespace nnkit::nn::functional {

using autograd::make_node;
using autograd::needs_grad;
using autograd::requires_grad;
using autograd::SavedTensor;
using autograd::set_history;

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  nnkit::detail::check_defined(x, "linear");
  nnkit::detail::check_defined(weight, "linear", "weight");
  NNKIT_CHECK(weight.dim() == 2, "[linear] weight must be 2-D [out_features, in_features], got ", weight.sizes());
  NNKIT_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "[linear] input of shape ", x.sizes(),
              " does not match weight of shape ", weight.sizes(), " (last input dim must be ", weight.size(1), ")");
  Tensor y = x.dim() == 2 ? x.mm(weight.t()) : x.matmul(weight.t());
  return bias.defined() ? y + bias : y;
}

Tensor silu(const Tensor& x) { return x * x.sigmoid(); }
Tensor leaky_relu(const Tensor& x, double slope) { return where(x > 0.0, x, x * slope); }

Tensor dropout(const Tensor& x, double p, bool training) {
  NNKIT_CHECK(p >= 0 && p <= 1, "[dropout] probability has to be between 0 and 1, but got ", p);
  if (!training || p == 0) return x;
  if (p == 1) return x * 0.0;
  Tensor mask = (rand(x.sizes(), {.dtype = x.dtype(), .device = x.device()}) >= p).to(x.dtype());
  return x * mask * (1.0 / (1.0 - p));
}

// ---- losses ----
Tensor reduce_loss(const Tensor& l, Reduction r) {
  switch (r) {
    case Reduction::None: return l;
    case Reduction::Sum: return l.sum();
    case Reduction::Mean: return l.mean();
  }
  return l;
}

Tensor nll_loss(const Tensor& logp, const Tensor& target, const CrossEntropyOptions& o) {
  nnkit::detail::check_defined(logp, "nll_loss");
  nnkit::detail::check_defined(target, "nll_loss", "target");
  NNKIT_CHECK(target.dtype() == kInt64, "[nll_loss] target must hold int64 class indices, got ", target.dtype());
  NNKIT_CHECK(logp.dim() >= 2 && target.dim() == logp.dim() - 1 && target.size(0) == logp.size(0), "[nll_loss] input of shape ",
              logp.sizes(), " and target of shape ", target.sizes(), " do not match (expected input [N, C, ...] and target [N, ...])");
  int64_t C = logp.size(1);
  Tensor valid = target.ne(double(o.ignore_index));
  Tensor safe = where(valid, target, 0.0);
  {
    Tensor bad = (safe < 0.0).to(kInt64) + (safe >= double(C)).to(kInt64);
    NNKIT_CHECK(bad.sum().item<int64_t>() == 0, "[nll_loss] target contains a class index outside [0, ", C, ")");
  }
  // Move classes last, then pick each target's entry with a one-hot mask.
  Tensor lp = logp;
  if (logp.dim() > 2) {
    Shape perm{0};
    for (int64_t d = 2; d < logp.dim(); ++d) perm.push_back(d);
    perm.push_back(1);
    lp = logp.permute(perm);
  }
  Shape cls_shape = Shape::filled(size_t(lp.dim()), 1);
  cls_shape[cls_shape.size() - 1] = C;
  Tensor onehot = arange(C, {.dtype = kInt64, .device = safe.device()}).view(cls_shape) == safe.unsqueeze(-1);
  Tensor picked = where(onehot, lp, 0.0).sum(-1);
  Tensor w = o.weight.defined() ? where(onehot, o.weight.to(lp.dtype()).view(cls_shape), 0.0).sum(-1)
                                : ones_like(picked);
  w = where(valid, w, 0.0);
  Tensor loss = -picked * w;
  if (o.reduction == Reduction::Mean) return loss.sum() / w.sum();
  return reduce_loss(loss, o.reduction);
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyOptions& o) {
  nnkit::detail::check_defined(input, "cross_entropy");
  nnkit::detail::check_defined(target, "cross_entropy", "target");
  NNKIT_CHECK(input.dim() >= 1, "[cross_entropy] input must have a class dimension");
  NNKIT_CHECK(o.label_smoothing >= 0 && o.label_smoothing <= 1, "[cross_entropy] label_smoothing must be in [0, 1], got ",
              o.label_smoothing);
  int64_t cdim = input.dim() == 1 ? 0 : 1;
  Tensor logp = input.log_softmax(cdim);
  if (target.is_floating_point()) {
    // Class probabilities.
    NNKIT_CHECK(target.sizes() == input.sizes(), "[cross_entropy] probability targets must have the input's shape ",
                input.sizes(), ", got ", target.sizes());
    int64_t C = input.size(cdim);
    Tensor t = o.label_smoothing > 0 ? target * (1 - o.label_smoothing) + o.label_smoothing / double(C) : target;
    Tensor l = logp * t;
    if (o.weight.defined()) {
      Shape ws = Shape::filled(size_t(input.dim()), 1);
      ws[size_t(cdim)] = C;
      l = l * o.weight.view(ws);
    }
    Tensor loss = -l.sum(cdim);
    if (o.reduction == Reduction::Mean) return loss.sum() / double(loss.numel());
    return reduce_loss(loss, o.reduction);
  }
  Tensor nll = nll_loss(input.dim() == 1 ? logp.unsqueeze(0) : logp, input.dim() == 1 ? target.unsqueeze(0) : target, o);
  if (o.label_smoothing == 0) return nll;
  // PyTorch: (1 - eps) * nll + eps * (smooth loss = -sum_c w_c logp_c / C, over non-ignored targets).
  int64_t C = input.size(cdim);
  Tensor lp = input.dim() == 1 ? logp.unsqueeze(0) : logp;
  Tensor sm = o.weight.defined()
                  ? -(lp * o.weight.view([&] {
                        Shape s = Shape::filled(size_t(lp.dim()), 1);
                        s[1] = C;
                        return s;
                      }())).sum(1)
                  : -lp.sum(1);
  Tensor valid = (input.dim() == 1 ? target.unsqueeze(0) : target).ne(double(o.ignore_index));
  sm = where(valid, sm, 0.0) / double(C);
  Tensor smooth;
  if (o.reduction == Reduction::Mean) {
    if (o.weight.defined()) {
      CrossEntropyOptions wo = o;
      wo.label_smoothing = 0;
      Tensor tv = input.dim() == 1 ? target.unsqueeze(0) : target;
      Tensor safe = where(valid, tv, 0.0);
      Shape cls = Shape::filled(size_t(safe.dim()) + 1, 1);
      cls[cls.size() - 1] = C;
      Tensor wsum = where((arange(C, {.dtype = kInt64, .device = safe.device()}).view(cls) == safe.unsqueeze(-1)), o.weight.to(lp.dtype()).view(cls), 0.0).sum(-1);
      smooth = sm.sum() / where(valid, wsum, 0.0).sum();
    } else {
      smooth = sm.sum() / valid.to(lp.dtype()).sum();
    }
  } else {
    smooth = reduce_loss(sm, o.reduction);
  }
  return nll * (1 - o.label_smoothing) + smooth * o.label_smoothing;
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction r) {
  NNKIT_CHECK(input.defined() && target.defined(), "[mse_loss] undefined input or target");
  NNKIT_CHECK(input.sizes() == target.sizes(), "[mse_loss] input shape ", input.sizes(), " and target shape ",
              target.sizes(), " differ");
  return reduce_loss((input - target).square(), r);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction r) {
  NNKIT_CHECK(input.defined() && target.defined(), "[l1_loss] undefined input or target");
  NNKIT_CHECK(input.sizes() == target.sizes(), "[l1_loss] input shape ", input.sizes(), " and target shape ",
              target.sizes(), " differ");
  return reduce_loss((input - target).abs(), r);
}

}  // namespace nnkit::nn::functional

// dropout2d, embedding, bilinear and the binary cross-entropy losses (composed of
// differentiable ops).
namespace nnkit::nn::functional {


Tensor dropout2d(const Tensor& x, double p, bool training) {
  NNKIT_CHECK(p >= 0 && p <= 1, "[dropout2d] dropout probability has to be between 0 and 1, but got ", p);
  NNKIT_CHECK(x.dim() == 3 || x.dim() == 4, "[dropout2d] expects a 3-D [C, H, W] or 4-D [N, C, H, W] input, got shape ",
              x.sizes());
  if (!training || p == 0) return x;
  if (p == 1) return x * 0.0;
  Shape ms = x.sizes();
  for (size_t d = x.dim() == 4 ? 2 : 1; d < ms.size(); ++d) ms[d] = 1;
  Tensor mask = (rand(ms, {.dtype = x.dtype(), .device = x.device()}) >= p).to(x.dtype()) * (1.0 / (1.0 - p));
  return x * mask;
}

Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<int64_t> padding_idx) {
  nnkit::detail::check_defined(indices, "embedding", "indices");
  nnkit::detail::check_defined(weight, "embedding", "weight");
  NNKIT_CHECK(indices.dtype() == kInt64, "[embedding] indices must be int64, got ", indices.dtype());
  NNKIT_CHECK(weight.dim() == 2, "[embedding] weight must be 2-D [num_embeddings, dim], got shape ", weight.sizes());
  Tensor flat = indices.reshape({-1});
  Tensor rows = index_select(weight, 0, flat);
  if (padding_idx) {
    // Same values; no gradient into the padding row (PyTorch's embedding_backward).
    Tensor is_pad = (flat == double(*padding_idx)).unsqueeze(1);
    rows = where(is_pad, rows.detach(), rows);
  }
  Shape out = indices.sizes();
  out.push_back(weight.size(1));
  return rows.view(out);
}

Tensor bilinear(const Tensor& x1, const Tensor& x2, const Tensor& weight, const Tensor& bias) {
  NNKIT_CHECK(weight.dim() == 3, "[bilinear] weight must be [out, in1, in2], got shape ", weight.sizes());
  NNKIT_CHECK(x1.dim() >= 1 && x2.dim() >= 1 && x1.size(-1) == weight.size(1) && x2.size(-1) == weight.size(2),
              "[bilinear] inputs of shapes ", x1.sizes(), " and ", x2.sizes(), " do not fit weight ", weight.sizes());
  const int64_t O = weight.size(0), I1 = weight.size(1), I2 = weight.size(2);
  Shape lead(x1.sizes().data(), x1.sizes().size() - 1);
  Tensor a = x1.reshape({-1, I1}), b = x2.reshape({-1, I2});
  // t[n, o, j] = sum_i a[n, i] W[o, i, j]
  Tensor t = a.matmul(weight.permute({1, 0, 2}).reshape({I1, O * I2})).view({-1, O, I2});
  Tensor y = (t * b.unsqueeze(1)).sum(-1);
  if (bias.defined()) y = y + bias;
  Shape out = lead;
  out.push_back(O);
  return y.view(out);
}



Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight, Reduction reduction) {
  NNKIT_CHECK(input.sizes() == target.sizes(), "[binary_cross_entropy] target shape ", target.sizes(),
              " differs from input shape ", input.sizes());
  {
    NoGradGuard g;
    NNKIT_CHECK(input.numel() == 0 || (input.min().item<double>() >= 0 && input.max().item<double>() <= 1),
                "[binary_cross_entropy] all input elements must be probabilities in [0, 1]");
  }
  // PyTorch clamps each log at -100 so that log(0) stays finite.
  Tensor l = -(target * input.log().clamp(-100.0) + (1.0 - target) * (1.0 - input).log().clamp(-100.0));
  if (weight.defined()) l = l * weight;
  return reduce_loss(l, reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight,
                                        const Tensor& pos_weight, Reduction reduction) {
  NNKIT_CHECK(input.sizes() == target.sizes(), "[binary_cross_entropy_with_logits] target shape ", target.sizes(),
              " differs from input shape ", input.sizes());
  // (1 - t) x + w_pos(t) (log(1 + exp(-|x|)) + max(-x, 0)), w_pos(t) = 1 + (pos_weight - 1) t.
  Tensor soft = log1p((-input.abs()).exp()) + (-input).relu();
  Tensor l = pos_weight.defined() ? (1.0 - target) * input + (1.0 + (pos_weight - 1.0) * target) * soft
                                  : (1.0 - target) * input + soft;
  if (weight.defined()) l = l * weight;
  return reduce_loss(l, reduction);
}


}  // namespace nnkit::nn::functional
