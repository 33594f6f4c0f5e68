// Convolution: the conv2d op (argument checks, output geometry, the backend's kernels) and its
// gradient rule. nn::functional's conv1d, conv_transpose2d and the padding modes build on it.
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

}  // namespace nnkit::nn::functional
