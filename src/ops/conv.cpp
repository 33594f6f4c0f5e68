// Convolution: the conv2d op (argument checks, output geometry, the backend's kernels) and its
// gradient rule; conv1d and conv_transpose2d composed on it; Padding's string form.
#include "autograd/function.h"
#include "backend/backend.h"
#include "nnkit/autograd/grad_mode.h"
#include "nnkit/nn/functional.h"
#include "ops/common.h"

namespace nnkit::nn::functional {

using autograd::make_node;
using autograd::needs_grad;
using autograd::requires_grad;
using autograd::SavedTensor;
using autograd::set_history;
using nnkit::detail::ConvGeom;
using nnkit::detail::PoolGeom;

// ---- conv2d ----
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dFuncOptions& o) {
  nnkit::detail::check_defined(x, "conv2d");
  nnkit::detail::check_defined(w, "conv2d", "weight");
  NNKIT_CHECK(x.dim() == 4, "[conv2d] expected 4-D input [N, C, H, W], got shape ", x.sizes());
  NNKIT_CHECK(w.dim() == 4, "[conv2d] expected 4-D weight [K, C/groups, kh, kw], got shape ", w.sizes());
  NNKIT_CHECK(o.groups > 0 && x.size(1) % o.groups == 0 && w.size(0) % o.groups == 0, "[conv2d] groups=", o.groups,
              " must divide both the input channels (", x.size(1), ") and the output channels (", w.size(0), ")");
  NNKIT_CHECK(w.size(1) * o.groups == x.size(1), "[conv2d] weight of shape ", w.sizes(), " expects ",
              w.size(1) * o.groups, " input channels, but the input of shape ", x.sizes(), " has ", x.size(1));
  NNKIT_CHECK(x.dtype() == w.dtype(), "[conv2d] input dtype ", x.dtype(), " and weight dtype ", w.dtype(), " differ");
  nnkit::detail::check_same_device(x, w, "conv2d");
  NNKIT_CHECK(o.stride.h > 0 && o.stride.w > 0 && o.dilation.h > 0 && o.dilation.w > 0 && o.padding.h >= 0 &&
                  o.padding.w >= 0,
              "[conv2d] stride and dilation must be positive and padding non-negative");
  if (b.defined()) {
    NNKIT_CHECK(b.dim() == 1 && b.size(0) == w.size(0) && b.dtype() == x.dtype(), "[conv2d] bias must be [",
                w.size(0), "] of dtype ", x.dtype(), ", got ", b.sizes(), " ", b.dtype());
    nnkit::detail::check_same_device(x, b, "conv2d");
  }
  ConvGeom g{x.size(0), x.size(1),  x.size(2),    x.size(3),    w.size(0),    w.size(2), w.size(3), o.stride.h,
             o.stride.w, o.padding.h, o.padding.w, o.dilation.h, o.dilation.w, o.groups, 0,         0};
  g.Ho = (g.H + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.Wo = (g.W + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  NNKIT_CHECK(g.Ho > 0 && g.Wo > 0, "[conv2d] input of spatial size ", g.H, "x", g.W, " (padded ", g.H + 2 * g.ph, "x",
              g.W + 2 * g.pw, ") is smaller than the kernel ", g.kh, "x", g.kw, " (dilation ", g.dh, "x", g.dw, ")");
  Tensor xc = x.detach().contiguous(), wc = w.detach().contiguous();
  Tensor bc = b.defined() ? b.detach().contiguous() : Tensor();
  Tensor out = empty({g.N, g.K, g.Ho, g.Wo}, {.dtype = x.dtype(), .device = x.device()});
  nnkit::detail::backend(out).conv2d_forward(g, xc, wc, bc, out);
  if (needs_grad(x, w, b)) {
    bool gx = requires_grad(x), gw = requires_grad(w), gb = requires_grad(b);
    auto node = make_node("ConvolutionBackward0", {&x, &w, &b},
                          [g, gx, gw, gb, sx = SavedTensor(xc), sw = SavedTensor(wc)](autograd::Node& self,
                                                                                        TensorList&& grads) {
                            auto me = autograd::running_node(self);
                            Tensor xs = sx.unpack(me), ws = sw.unpack(me);
                            Tensor go = grads[0].detach().contiguous();
                            const TensorOptions opts{.dtype = xs.dtype(), .device = xs.device()};
                            Tensor dx = gx ? empty(xs.sizes(), opts) : Tensor();
                            Tensor dw = gw ? empty(ws.sizes(), opts) : Tensor();
                            Tensor db = gb ? empty({g.K}, opts) : Tensor();
                            nnkit::detail::check_same_device(xs, go, "conv2d_backward");
                            nnkit::detail::backend(xs).conv2d_backward(g, xs, ws, go, dx, dw, db);
                            return TensorList{dx, dw, db};
                          });
    set_history(out, std::move(node));
  }
  return out;
}

Padding::Padding(const char* s) {
  const std::string v = s ? s : "";
  if (v == "same") {
    kind = Kind::Same;
  } else if (v == "valid") {
    kind = Kind::Valid;
  } else {
    nnkit::detail::throw_error("[Conv] invalid padding string '" + v + "': expected \"same\" or \"valid\"");
  }
}

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding, int64_t dilation,
              int64_t groups) {
  NNKIT_CHECK(x.dim() == 3, "[conv1d] expects input [N, C, L], got shape ", x.sizes());
  NNKIT_CHECK(weight.dim() == 3, "[conv1d] expects weight [K, C/groups, k], got shape ", weight.sizes());
  Tensor y = conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias,
                    {.stride = Pair(1, stride), .padding = Pair(0, padding), .dilation = Pair(1, dilation), .groups = groups});
  return y.squeeze(2);
}

// conv_transpose2d as a convolution: insert stride-1 zeros between the input's pixels, pad by
// dilation * (k - 1) - padding (plus output_padding at the end), and convolve (stride 1) with
// the kernel flipped and its in/out channel roles swapped per group. Composed of
// differentiable ops, so its gradients come for free and match.
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvTranspose2dFuncOptions& o) {
  NNKIT_CHECK(x.dim() == 4, "[conv_transpose2d] expects input [N, C, H, W], got shape ", x.sizes());
  NNKIT_CHECK(weight.dim() == 4 && weight.size(0) == x.size(1) && o.groups > 0 && x.size(1) % o.groups == 0,
              "[conv_transpose2d] weight of shape ", weight.sizes(), " does not fit input ", x.sizes(), " with ", o.groups,
              " groups (expected [", x.size(1), ", out_channels / groups, kh, kw])");
  NNKIT_CHECK(o.stride.h > 0 && o.stride.w > 0 && o.dilation.h > 0 && o.dilation.w > 0 && o.padding.h >= 0 &&
                  o.padding.w >= 0,
              "[conv_transpose2d] stride and dilation must be positive, padding non-negative");
  NNKIT_CHECK(o.output_padding.h >= 0 && o.output_padding.w >= 0 &&
                  (o.output_padding.h < o.stride.h || o.output_padding.h < o.dilation.h) &&
                  (o.output_padding.w < o.stride.w || o.output_padding.w < o.dilation.w),
              "[conv_transpose2d] output_padding must be smaller than either stride or dilation");
  Tensor up = x;
  auto insert_zeros = [](Tensor t, int64_t dim, int64_t s) {
    if (s == 1) return t;
    const int64_t n = t.size(dim);
    Shape zs = t.sizes();
    zs.insert(size_t(dim) + 1, s - 1);
    Tensor z = zeros(zs, {.dtype = t.dtype(), .device = t.device()});
    Tensor inter = cat({t.unsqueeze(dim + 1), z}, dim + 1);  // [.., n, s, ..]
    Shape merged = t.sizes();
    merged[size_t(dim)] = n * s;
    return inter.reshape(merged).narrow(dim, 0, (n - 1) * s + 1);
  };
  up = insert_zeros(insert_zeros(up, 2, o.stride.h), 3, o.stride.w);
  const int64_t kh = weight.size(2), kw = weight.size(3);
  const int64_t ph = o.dilation.h * (kh - 1) - o.padding.h, pw = o.dilation.w * (kw - 1) - o.padding.w;
  up = pad(up, {pw, pw + o.output_padding.w, ph, ph + o.output_padding.h});
  const int64_t g = o.groups, cin_g = weight.size(0) / g, cout_g = weight.size(1);
  Tensor w = flip(weight, {2, 3}).view({g, cin_g, cout_g, kh, kw}).transpose(1, 2).reshape({g * cout_g, cin_g, kh, kw});
  return conv2d(up, w, bias, {.stride = 1, .padding = 0, .dilation = o.dilation, .groups = g});
}

}  // namespace nnkit::nn::functional
