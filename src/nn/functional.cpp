// nn::functional. Convolution and pooling have their own kernels and gradient rules;
// normalization and losses are composed from differentiable ops.
#include "nnkit/nn/functional.h"

#include <cmath>
#include <limits>

#include "autograd/function.h"
#include "cpu/conv.h"
#include "nnkit/autograd/grad_mode.h"
#include "nn/internal.h"
#include "ops/common.h"
#include "ops/cuda_ops.h"

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
  cpu::Conv2dGeometry g{x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), w.size(2), w.size(3),
                        o.stride.h, o.stride.w, o.padding.h, o.padding.w, o.dilation.h, o.dilation.w, o.groups, 0, 0};
  g.Ho = (g.H + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.Wo = (g.W + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  NNKIT_CHECK(g.Ho > 0 && g.Wo > 0, "[conv2d] input of spatial size ", g.H, "x", g.W, " (padded ", g.H + 2 * g.ph, "x",
              g.W + 2 * g.pw, ") is smaller than the kernel ", g.kh, "x", g.kw, " (dilation ", g.dh, "x", g.dw, ")");
  Tensor xc = x.detach().contiguous(), wc = w.detach().contiguous();
  Tensor bc = b.defined() ? b.detach().contiguous() : Tensor();
  Tensor out = empty({g.N, g.K, g.Ho, g.Wo}, {.dtype = x.dtype(), .device = x.device()});
  // The same geometry for cuDNN (cuda/blas_dnn.cpp).
  const cuda_detail::ConvGeom cg{g.N,  g.C,  g.H,  g.W,  g.K,  g.kh,     g.kw, g.sh,
                                 g.sw, g.ph, g.pw, g.dh, g.dw, g.groups, g.Ho, g.Wo};
  nnkit::detail::dispatch_float(x.dtype(), "conv2d", [&]<typename T>() {
    if (xc.is_cuda()) {
      cuda_detail::conv2d_forward(cg, xc, wc, bc, out);
      return;
    }
    cpu::conv2d_forward<T>(g, xc.data_ptr<T>(), wc.data_ptr<T>(), bc.defined() ? bc.data_ptr<T>() : nullptr,
                           out.data_ptr<T>());
  });
  if (needs_grad(x, w, b)) {
    bool gx = requires_grad(x), gw = requires_grad(w), gb = requires_grad(b);
    auto node = make_node("ConvolutionBackward0", {&x, &w, &b},
                          [g, cg, gx, gw, gb, sx = SavedTensor(xc), sw = SavedTensor(wc)](autograd::Node& self,
                                                                                        TensorList&& grads) {
                            auto me = autograd::running_node(self);
                            Tensor xs = sx.unpack(me), ws = sw.unpack(me);
                            Tensor go = grads[0].detach().contiguous();
                            const TensorOptions opts{.dtype = xs.dtype(), .device = xs.device()};
                            Tensor dx = gx ? empty(xs.sizes(), opts) : Tensor();
                            Tensor dw = gw ? empty(ws.sizes(), opts) : Tensor();
                            Tensor db = gb ? empty({g.K}, opts) : Tensor();
                            if (xs.is_cuda()) {
                              nnkit::detail::check_same_device(xs, go, "conv2d_backward");
                              cuda_detail::conv2d_backward(cg, xs, ws, go, dx, dw, db);
                              return TensorList{dx, dw, db};
                            }
                            nnkit::detail::dispatch_float(xs.dtype(), "conv2d_backward", [&]<typename T>() {
                              cpu::conv2d_backward<T>(g, xs.data_ptr<T>(), ws.data_ptr<T>(), go.data_ptr<T>(),
                                                      gx ? dx.data_ptr<T>() : nullptr, gw ? dw.data_ptr<T>() : nullptr,
                                                      gb ? db.data_ptr<T>() : nullptr);
                            });
                            return TensorList{dx, dw, db};
                          });
    set_history(out, std::move(node));
  }
  return out;
}

// ---- pooling ----
namespace {
int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
  int64_t num = in + 2 * p - k;
  int64_t out = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
  // The last window must start inside the input or left padding (PyTorch's rule).
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

// {NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw}: shared with the CUDA kernels.
using PoolGeom = cuda_detail::PoolGeom;

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
  nnkit::detail::dispatch_float(x.dtype(), "max_pool2d", [&]<typename T>() {
    if (xc.is_cuda()) {
      cuda_detail::max_pool2d_forward(g, xc, out, idx);
      return;
    }
    const T* px = xc.data_ptr<T>();
    T* po = out.data_ptr<T>();
    int64_t* pi = idx.data_ptr<int64_t>();
#pragma omp parallel for if (g.NC * g.Ho * g.Wo > 32768)
    for (int64_t c = 0; c < g.NC; ++c)
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
          T best = -std::numeric_limits<T>::infinity();
          int64_t bi = -1;
          for (int64_t i = std::max<int64_t>(h0, 0); i < std::min(h0 + g.kh, g.H); ++i)
            for (int64_t j = std::max<int64_t>(w0, 0); j < std::min(w0 + g.kw, g.W); ++j) {
              T v = px[(c * g.H + i) * g.W + j];
              if (bi < 0 || v > best || std::isnan(v)) {
                best = v;
                bi = i * g.W + j;
                if (std::isnan(v)) goto done;
              }
            }
        done:
          po[(c * g.Ho + oh) * g.Wo + ow] = best;
          pi[(c * g.Ho + oh) * g.Wo + ow] = bi;
        }
  });
  if (needs_grad(x)) {
    Shape in_sizes = x.sizes();
    auto node = make_node("MaxPool2DWithIndicesBackward0", {&x}, [g, in_sizes, idx](autograd::Node&, TensorList&& gr) {
      Tensor go = gr[0].detach().contiguous();
      if (go.is_cuda()) {
        Tensor gx = empty(in_sizes, {.dtype = go.dtype(), .device = go.device()});
        cuda_detail::max_pool2d_backward(g, go, idx, gx);  // zeroes gx, then scatters
        return TensorList{gx};
      }
      Tensor gx = zeros(in_sizes, {.dtype = go.dtype()});
      nnkit::detail::dispatch_float(go.dtype(), "max_pool2d_backward", [&]<typename T>() {
        const T* pg = go.data_ptr<T>();
        const int64_t* pi = idx.data_ptr<int64_t>();
        T* px = gx.data_ptr<T>();
#pragma omp parallel for if (g.NC * g.Ho * g.Wo > 32768)
        for (int64_t c = 0; c < g.NC; ++c)
          for (int64_t k = 0; k < g.Ho * g.Wo; ++k) {
            int64_t i = pi[c * g.Ho * g.Wo + k];
            if (i >= 0) px[c * g.H * g.W + i] += pg[c * g.Ho * g.Wo + k];
          }
      });
      return TensorList{gx};
    });
    set_history(out, std::move(node));
  }
  return out;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& o) {
  nnkit::detail::check_defined(x, "avg_pool2d");
  PoolGeom g = pool_geom(x, o, "avg_pool2d");
  // count_include_pad=True (PyTorch's default): divide by the window clipped to the padded input.
  auto window = [g](int64_t oh, int64_t ow, int64_t& h0, int64_t& h1, int64_t& w0, int64_t& w1) {
    h0 = oh * g.sh - g.ph;
    w0 = ow * g.sw - g.pw;
    h1 = std::min(h0 + g.kh, g.H + g.ph);
    w1 = std::min(w0 + g.kw, g.W + g.pw);
    int64_t count = (h1 - h0) * (w1 - w0);
    h0 = std::max<int64_t>(h0, 0);
    w0 = std::max<int64_t>(w0, 0);
    h1 = std::min(h1, g.H);
    w1 = std::min(w1, g.W);
    return count;
  };
  Tensor xc = x.detach().contiguous();
  Tensor out = empty(pooled_shape(x, g.Ho, g.Wo), {.dtype = x.dtype(), .device = x.device()});
  nnkit::detail::dispatch_float(x.dtype(), "avg_pool2d", [&]<typename T>() {
    if (xc.is_cuda()) {
      cuda_detail::avg_pool2d_forward(g, xc, out);
      return;
    }
    const T* px = xc.data_ptr<T>();
    T* po = out.data_ptr<T>();
#pragma omp parallel for if (g.NC * g.Ho * g.Wo > 32768)
    for (int64_t c = 0; c < g.NC; ++c)
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          int64_t h0, h1, w0, w1;
          int64_t count = window(oh, ow, h0, h1, w0, w1);
          double s = 0;
          for (int64_t i = h0; i < h1; ++i)
            for (int64_t j = w0; j < w1; ++j) s += double(px[(c * g.H + i) * g.W + j]);
          po[(c * g.Ho + oh) * g.Wo + ow] = T(s / double(count));
        }
  });
  if (needs_grad(x)) {
    Shape in_sizes = x.sizes();
    auto node = make_node("AvgPool2DBackward0", {&x}, [g, in_sizes, window](autograd::Node&, TensorList&& gr) {
      Tensor go = gr[0].detach().contiguous();
      if (go.is_cuda()) {
        Tensor gx = empty(in_sizes, {.dtype = go.dtype(), .device = go.device()});
        cuda_detail::avg_pool2d_backward(g, go, gx);  // writes every element of gx
        return TensorList{gx};
      }
      Tensor gx = zeros(in_sizes, {.dtype = go.dtype()});
      nnkit::detail::dispatch_float(go.dtype(), "avg_pool2d_backward", [&]<typename T>() {
        const T* pg = go.data_ptr<T>();
        T* px = gx.data_ptr<T>();
#pragma omp parallel for if (g.NC * g.Ho * g.Wo > 32768)
        for (int64_t c = 0; c < g.NC; ++c)
          for (int64_t oh = 0; oh < g.Ho; ++oh)
            for (int64_t ow = 0; ow < g.Wo; ++ow) {
              int64_t h0, h1, w0, w1;
              int64_t count = window(oh, ow, h0, h1, w0, w1);
              T v = pg[(c * g.Ho + oh) * g.Wo + ow] / T(count);
              for (int64_t i = h0; i < h1; ++i)
                for (int64_t j = w0; j < w1; ++j) px[(c * g.H + i) * g.W + j] += v;
            }
      });
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

// ---- normalization ----
namespace {
// Fused batch norm over x viewed as [N, C, S] (contiguous): statistics per channel in double
// (two passes: mean, then the centred sum of squares), y = x * scale + shift in one pass, and
// a backward that needs two per-channel sums. Parallel over channels (statistics, backward
// sums) and over (n, c) rows (elementwise passes).
template <typename T>
void bn_channel_stats(const T* x, int64_t N, int64_t C, int64_t S, double* mean, double* var) {
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * S;
      double s = 0;
      // (omp simd: lets the compiler split the double sum over vector lanes; a plain loop is one
      // dependency chain, 4 cycles per element)
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < S; ++i) s += double(p[i]);
      sum += s;
    }
    const double m = sum / double(N * S);
    double sq = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * S;
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < S; ++i) {
        const double d = double(p[i]) - m;
        s += d * d;
      }
      sq += s;
    }
    mean[c] = m;
    var[c] = sq / double(N * S);
  }
}

template <typename T>
void bn_apply(const T* x, T* y, int64_t N, int64_t C, int64_t S, const double* scale, const double* shift) {
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
  for (int64_t r = 0; r < N * C; ++r) {
    const int64_t c = r % C;
    const T a = T(scale[c]), b = T(shift[c]);
    const T* p = x + r * S;
    T* q = y + r * S;
    for (int64_t i = 0; i < S; ++i) q[i] = p[i] * a + b;
  }
}

// sum_dy[c] = sum dy, sum_dy_xmu[c] = sum dy * (x - mean[c]).
template <typename T>
void bn_backward_sums(const T* x, const T* dy, int64_t N, int64_t C, int64_t S, const double* mean, double* sum_dy,
                      double* sum_dy_xmu) {
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
  for (int64_t c = 0; c < C; ++c) {
    double a = 0, b = 0;
    const double m = mean[c];
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * S;
      const T* g = dy + (n * C + c) * S;
      double sa = 0, sb = 0;
#pragma omp simd reduction(+ : sa, sb)
      for (int64_t i = 0; i < S; ++i) {
        sa += double(g[i]);
        sb += double(g[i]) * (double(p[i]) - m);
      }
      a += sa;
      b += sb;
    }
    sum_dy[c] = a;
    sum_dy_xmu[c] = b;
  }
}

// dx = k1[c] * dy + k2[c] * x + k3[c]  (covers both train-mode and eval-mode formulas).
template <typename T>
void bn_dx(const T* x, const T* dy, T* dx, int64_t N, int64_t C, int64_t S, const double* k1, const double* k2,
           const double* k3) {
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
  for (int64_t r = 0; r < N * C; ++r) {
    const int64_t c = r % C;
    const T a = T(k1[c]), b = T(k2[c]), d = T(k3[c]);
    const T* p = x + r * S;
    const T* g = dy + r * S;
    T* q = dx + r * S;
    for (int64_t i = 0; i < S; ++i) q[i] = g[i] * a + p[i] * b + d;
  }
}
}  // namespace

namespace {
// Batch norm on CUDA. With batch statistics (training, or no running statistics) cuDNN computes
// y and the saved batch mean and inverse std that its backward takes; the running statistics
// are updated here with tensor ops on the device (PyTorch's rule: running = (1 - m) * running +
// m * batch statistic, the variance unbiased). In evaluation y is composed of differentiable
// tensor ops: (x - running_mean) * (weight / sqrt(running_var + eps)) + bias.
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

Tensor batch_norm_cuda(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, bool training, std::optional<double> momentum, double eps,
                       const Tensor& num_batches_tracked) {
  const int64_t N = x.size(0), C = x.size(1), S = C > 0 && N > 0 ? x.numel() / (N * C) : 0;
  const int64_t M = N * S;  // values per channel
  Shape bshape, red_dims;   // per-channel tensors as [1, C, 1, ...]; the dims reduced over {0, 2, ...}
  for (int64_t d = 0; d < x.dim(); ++d) {
    bshape.push_back(d == 1 ? C : 1);
    if (d != 1) red_dims.push_back(d);
  }
  const bool batch_stats = training || !running_mean.defined();
  if (!batch_stats) {
    NNKIT_CHECK(running_var.defined(), "[batch_norm] running_mean is given but running_var is undefined");
    // The per-channel factor in float64, as on the CPU, then in x's dtype.
    // y = x * scale + shift with shift = bias - mean * scale, both in float64 then x's dtype:
    // the CPU kernel's arithmetic, so both devices round alike.
    Tensor invstd = running_var.detach().to(kFloat64).add(eps).rsqrt();
    Tensor scale = weight.defined() ? weight.to(kFloat64).mul(invstd) : invstd;
    Tensor shift = running_mean.detach().to(kFloat64).mul(scale).neg();
    if (bias.defined()) shift = shift.add(bias.to(kFloat64));
    return x.mul(scale.to(x.dtype()).reshape(bshape)).add(shift.to(x.dtype()).reshape(bshape));
  }
  NNKIT_CHECK(M > 1, "[batch_norm] expected more than 1 value per channel when training, got input shape ", x.sizes());
  const TensorOptions opts{.dtype = x.dtype(), .device = x.device()};
  Tensor xc = x.detach().contiguous();
  Tensor wc = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = empty(x.sizes(), opts), save_mean = empty({C}, opts), save_invstd = empty({C}, opts);
  cuda_detail::batch_norm_train(xc, wc, bc, eps, y, save_mean, save_invstd);
  if (training && running_mean.defined()) {
    // Batch mean and unbiased variance by exact reductions (not cuDNN's saved values, which its
    // documentation reserves for its backward).
    NoGradGuard g;
    update_running_stats(running_mean, running_var, num_batches_tracked, momentum, xc.mean(red_dims),
                         xc.var(red_dims, 1));
  }
  if (needs_grad(x, weight, bias)) {
    const bool gx = requires_grad(x), gw = requires_grad(weight), gb = requires_grad(bias);
    // The weight's values at forward time (the CPU path keeps a copy of them too).
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
                            cuda_detail::batch_norm_backward(xs, dy, w_saved, save_mean, save_invstd, eps, dx, dw, db);
                            return TensorList{dx, dw, db};
                          });
    set_history(y, std::move(node));
  }
  return y;
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
  if (x.is_cuda())
    return batch_norm_cuda(x, running_mean, running_var, weight, bias, training, momentum, eps, num_batches_tracked);
  const int64_t N = x.size(0), S = C > 0 && N > 0 ? x.numel() / (N * C) : 0;
  const int64_t M = N * S;  // values per channel
  const bool batch_stats = training || !running_mean.defined();
  std::vector<double> mean(static_cast<size_t>(C)), var(static_cast<size_t>(C));
  Tensor xc = x.detach().contiguous();
  if (batch_stats) {
    NNKIT_CHECK(M > 1, "[batch_norm] expected more than 1 value per channel when training, got input shape ", x.sizes());
    nnkit::detail::dispatch_float(x.dtype(), "batch_norm", [&]<typename T>() {
      bn_channel_stats<T>(xc.data_ptr<T>(), N, C, S, mean.data(), var.data());
    });
    if (training && running_mean.defined()) {
      NoGradGuard g;
      std::vector<double> unbiased(var);
      for (double& v : unbiased) v *= double(M) / double(M - 1);
      update_running_stats(running_mean, running_var, num_batches_tracked, momentum, from_vector(mean),
                           from_vector(unbiased));
    }
  } else {
    Tensor rm = running_mean.detach().to(kFloat64).contiguous(), rv = running_var.detach().to(kFloat64).contiguous();
    for (int64_t c = 0; c < C; ++c) {
      mean[size_t(c)] = rm.data_ptr<double>()[c];
      var[size_t(c)] = rv.data_ptr<double>()[c];
    }
  }
  std::vector<double> invstd(static_cast<size_t>(C)), w(static_cast<size_t>(C), 1.0), scale(static_cast<size_t>(C)),
      shift(static_cast<size_t>(C));
  {
    Tensor wd = weight.defined() ? weight.detach().to(kFloat64).contiguous() : Tensor();
    Tensor bd = bias.defined() ? bias.detach().to(kFloat64).contiguous() : Tensor();
    for (int64_t c = 0; c < C; ++c) {
      invstd[size_t(c)] = 1.0 / std::sqrt(var[size_t(c)] + eps);
      if (wd.defined()) w[size_t(c)] = wd.data_ptr<double>()[c];
      scale[size_t(c)] = w[size_t(c)] * invstd[size_t(c)];
      shift[size_t(c)] = (bd.defined() ? bd.data_ptr<double>()[c] : 0.0) - mean[size_t(c)] * scale[size_t(c)];
    }
  }
  Tensor y = empty(x.sizes(), {.dtype = x.dtype()});
  nnkit::detail::dispatch_float(x.dtype(), "batch_norm", [&]<typename T>() {
    bn_apply<T>(xc.data_ptr<T>(), y.data_ptr<T>(), N, C, S, scale.data(), shift.data());
  });
  if (needs_grad(x, weight, bias)) {
    const bool gx = requires_grad(x), gw = requires_grad(weight), gb = requires_grad(bias);
    auto node = make_node(
        "NativeBatchNormBackward0", {&x, &weight, &bias},
        [=, sx = SavedTensor(xc)](autograd::Node& self, TensorList&& grads) {
          Tensor xs = sx.unpack(autograd::running_node(self));
          Tensor dy = grads[0].detach().contiguous();
          std::vector<double> sum_dy(static_cast<size_t>(C)), sum_dy_xmu(static_cast<size_t>(C));
          nnkit::detail::dispatch_float(xs.dtype(), "batch_norm_backward", [&]<typename T>() {
            bn_backward_sums<T>(xs.data_ptr<T>(), dy.data_ptr<T>(), N, C, S, mean.data(), sum_dy.data(),
                                sum_dy_xmu.data());
          });
          Tensor dx, dw, db;
          if (gx) {
            std::vector<double> k1(static_cast<size_t>(C)), k2(static_cast<size_t>(C)), k3(static_cast<size_t>(C));
            for (int64_t c = 0; c < C; ++c) {
              const size_t i = size_t(c);
              if (batch_stats) {
                // dx = w*invstd * (dy - sum_dy/M - (x - mean) * invstd^2 * sum_dy_xmu / M)
                const double a = w[i] * invstd[i], proj = invstd[i] * invstd[i] * sum_dy_xmu[i] / double(M);
                k1[i] = a;
                k2[i] = -a * proj;
                k3[i] = a * (mean[i] * proj - sum_dy[i] / double(M));
              } else {
                k1[i] = w[i] * invstd[i];
                k2[i] = 0;
                k3[i] = 0;
              }
            }
            dx = empty(xs.sizes(), {.dtype = xs.dtype()});
            nnkit::detail::dispatch_float(xs.dtype(), "batch_norm_backward", [&]<typename T>() {
              bn_dx<T>(xs.data_ptr<T>(), dy.data_ptr<T>(), dx.data_ptr<T>(), N, C, S, k1.data(), k2.data(), k3.data());
            });
          }
          if (gw) {
            std::vector<double> v(static_cast<size_t>(C));
            for (int64_t c = 0; c < C; ++c) v[size_t(c)] = sum_dy_xmu[size_t(c)] * invstd[size_t(c)];
            dw = from_vector(v).to(xs.dtype());
          }
          if (gb) db = from_vector(sum_dy).to(xs.dtype());
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

// ---- moved from more_layers.cpp ----
// dropout2d, embedding, bilinear, conv1d, instance_norm, the binary cross-entropy losses and
// conv_transpose2d (composed of differentiable ops), and Padding's string form.
namespace nnkit::nn::functional {

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

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding, int64_t dilation,
              int64_t groups) {
  NNKIT_CHECK(x.dim() == 3, "[conv1d] expects input [N, C, L], got shape ", x.sizes());
  NNKIT_CHECK(weight.dim() == 3, "[conv1d] expects weight [K, C/groups, k], got shape ", weight.sizes());
  Tensor y = conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias,
                    {.stride = Pair(1, stride), .padding = Pair(0, padding), .dilation = Pair(1, dilation), .groups = groups});
  return y.squeeze(2);
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
