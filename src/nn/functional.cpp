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
