// Pooling: max_pool2d (with indices for its gradient), avg_pool2d, adaptive_avg_pool2d; the
// kernels are the backend's.
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
using nnkit::detail::ConvGeom;
using nnkit::detail::PoolGeom;

// ---- pooling ----
namespace {
int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
  int64_t num = in + 2 * p - k;
  int64_t out = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
  // The last window must start inside the input or left padding (PyTorch's rule).
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}


PoolGeom pool_geom(const Tensor& x, const Pool2dOptions& o, const char* op) {
  NNKIT_CHECK(x.dim() == 4 || x.dim() == 3, "[", op, "] expected 3-D or 4-D input, got shape ", x.sizes());
  Pair s = o.stride.value_or(o.kernel_size);
  NNKIT_CHECK(o.kernel_size.h > 0 && o.kernel_size.w > 0 && s.h > 0 && s.w > 0, "[", op,
              "] kernel_size and stride must be positive");
  NNKIT_CHECK(o.padding.h >= 0 && o.padding.w >= 0 && o.padding.h * 2 <= o.kernel_size.h &&
                  o.padding.w * 2 <= o.kernel_size.w,
              "[", op, "] padding should be at most half of the kernel size, got padding (", o.padding.h, ", ",
              o.padding.w, ") for kernel (", o.kernel_size.h, ", ", o.kernel_size.w, ")");
  int64_t H = x.size(-2), W = x.size(-1);
  PoolGeom g{x.numel() / std::max<int64_t>(H * W, 1), H, W, 0, 0, o.kernel_size.h, o.kernel_size.w, s.h, s.w,
             o.padding.h, o.padding.w};
  g.Ho = pool_out(H, g.kh, g.sh, g.ph, o.ceil_mode);
  g.Wo = pool_out(W, g.kw, g.sw, g.pw, o.ceil_mode);
  NNKIT_CHECK(g.Ho > 0 && g.Wo > 0, "[", op, "] output size is too small for input of spatial size ", H, "x", W);
  return g;
}

Shape pooled_shape(const Tensor& x, int64_t Ho, int64_t Wo) {
  Shape s = x.sizes();
  s[s.size() - 2] = Ho;
  s[s.size() - 1] = Wo;
  return s;
}
}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& o) {
  nnkit::detail::check_defined(x, "max_pool2d");
  PoolGeom g = pool_geom(x, o, "max_pool2d");
  Tensor xc = x.detach().contiguous();
  Tensor out = empty(pooled_shape(x, g.Ho, g.Wo), {.dtype = x.dtype(), .device = x.device()});
  Tensor idx = empty(out.sizes(), {.dtype = kInt64, .device = x.device()});
  if (out.numel() > 0) nnkit::detail::backend(out).max_pool2d_forward(g, xc, out, idx);
  if (needs_grad(x)) {
    Shape in_sizes = x.sizes();
    auto node = make_node("MaxPool2DWithIndicesBackward0", {&x}, [g, in_sizes, idx](autograd::Node&, TensorList&& gr) {
      Tensor go = gr[0].detach().contiguous();
      Tensor gx = empty(in_sizes, {.dtype = go.dtype(), .device = go.device()});
      nnkit::detail::backend(go).max_pool2d_backward(g, go, idx, gx);  // writes all of gx
      return TensorList{gx};
    });
    set_history(out, std::move(node));
  }
  return out;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& o) {
  nnkit::detail::check_defined(x, "avg_pool2d");
  PoolGeom g = pool_geom(x, o, "avg_pool2d");
  // count_include_pad=True (PyTorch's default): the backend divides by the window clipped to the padded input.
  Tensor xc = x.detach().contiguous();
  Tensor out = empty(pooled_shape(x, g.Ho, g.Wo), {.dtype = x.dtype(), .device = x.device()});
  if (out.numel() > 0) nnkit::detail::backend(out).avg_pool2d_forward(g, xc, out);
  if (needs_grad(x)) {
    Shape in_sizes = x.sizes();
    auto node = make_node("AvgPool2DBackward0", {&x}, [g, in_sizes](autograd::Node&, TensorList&& gr) {
      Tensor go = gr[0].detach().contiguous();
      Tensor gx = empty(in_sizes, {.dtype = go.dtype(), .device = go.device()});
      nnkit::detail::backend(go).avg_pool2d_backward(g, go, gx);  // writes all of gx
      return TensorList{gx};
    });
    set_history(out, std::move(node));
  }
  return out;
}

Tensor adaptive_avg_pool2d(const Tensor& x, Pair out_size) {
  nnkit::detail::check_defined(x, "adaptive_avg_pool2d");
  NNKIT_CHECK(x.dim() == 3 || x.dim() == 4, "[adaptive_avg_pool2d] expected 3-D or 4-D input, got shape ", x.sizes());
  NNKIT_CHECK(out_size.h > 0 && out_size.w > 0, "[adaptive_avg_pool2d] output size must be positive");
  int64_t H = x.size(-2), W = x.size(-1);
  if (out_size.h == 1 && out_size.w == 1) return x.mean({-2, -1}, true);
  // Window i covers [floor(i*H/Ho), ceil((i+1)*H/Ho)) (PyTorch's adaptive rule); built from means.
  TensorList rows;
  for (int64_t i = 0; i < out_size.h; ++i) {
    int64_t h0 = (i * H) / out_size.h, h1 = ((i + 1) * H + out_size.h - 1) / out_size.h;
    TensorList cols;
    for (int64_t j = 0; j < out_size.w; ++j) {
      int64_t w0 = (j * W) / out_size.w, w1 = ((j + 1) * W + out_size.w - 1) / out_size.w;
      cols.push_back(x.narrow(-2, h0, h1 - h0).narrow(-1, w0, w1 - w0).mean({-2, -1}, true));
    }
    rows.push_back(cat(cols, -1));
  }
  return cat(rows, -2);
}

}  // namespace nnkit::nn::functional
