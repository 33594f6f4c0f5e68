// Convolution on the CPU: im2col per sample (skipped for 1x1 stride-1 convolutions, whose
// input already is the column matrix), one GEMM per group, OpenMP over the batch (each thread
// runs Eigen single-threaded); weight gradients are reduced across threads at the end.
#include "cpu/conv.h"

#include <omp.h>

#include <cstring>
#include <vector>

#include "cpu/kernels.h"

namespace nnkit::cpu {

namespace {

bool is_pointwise(const Conv2dGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

// col[(c*kh + i)*kw + j][oh*Wo + ow] = x[c][oh*sh - ph + i*dh][ow*sw - pw + j*dw] (0 outside).
template <typename T>
void im2col(const Conv2dGeometry& g, const T* x, int64_t channels, T* col) {
  const int64_t HWo = g.Ho * g.Wo;
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        T* dst = col + ((c * g.kh + i) * g.kw + j) * HWo;
        const T* src = x + c * g.H * g.W;
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          int64_t ih = oh * g.sh - g.ph + i * g.dh;
          T* d = dst + oh * g.Wo;
          if (ih < 0 || ih >= g.H) {
            std::memset(d, 0, sizeof(T) * size_t(g.Wo));
            continue;
          }
          const T* s = src + ih * g.W;
          int64_t off = j * g.dw - g.pw;
          if (g.sw == 1) {
            // Contiguous run: zero the edges, copy the middle.
            int64_t lo = std::max<int64_t>(0, -off), hi = std::min<int64_t>(g.Wo, g.W - off);
            for (int64_t ow = 0; ow < std::min(lo, g.Wo); ++ow) d[ow] = T(0);
            if (hi > lo) std::memcpy(d + lo, s + lo + off, sizeof(T) * size_t(hi - lo));
            for (int64_t ow = std::max(hi, lo); ow < g.Wo; ++ow) d[ow] = T(0);
          } else {
            for (int64_t ow = 0; ow < g.Wo; ++ow) {
              int64_t iw = ow * g.sw + off;
              d[ow] = (iw >= 0 && iw < g.W) ? s[iw] : T(0);
            }
          }
        }
      }
}

// The adjoint of im2col: x[c][ih][iw] += col[...].
template <typename T>
void col2im(const Conv2dGeometry& g, const T* col, int64_t channels, T* x) {
  const int64_t HWo = g.Ho * g.Wo;
  std::memset(x, 0, sizeof(T) * size_t(channels * g.H * g.W));
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const T* src = col + ((c * g.kh + i) * g.kw + j) * HWo;
        T* dst = x + c * g.H * g.W;
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          const T* s = src + oh * g.Wo;
          T* d = dst + ih * g.W;
          int64_t off = j * g.dw - g.pw;
          int64_t lo = 0, hi = g.Wo;
          if (g.sw == 1) {
            lo = std::max<int64_t>(0, -off);
            hi = std::min<int64_t>(g.Wo, g.W - off);
            for (int64_t ow = lo; ow < hi; ++ow) d[ow + off] += s[ow];
          } else {
            for (int64_t ow = 0; ow < g.Wo; ++ow) {
              int64_t iw = ow * g.sw + off;
              if (iw >= 0 && iw < g.W) d[iw] += s[ow];
            }
          }
        }
      }
}

template <typename F>
void over_batch(int64_t N, F f) {
  // Parallel over samples when there are enough of them; otherwise Eigen parallelizes each GEMM.
  if (N >= omp_get_max_threads() && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel
    {
      std::vector<char> scratch;
#pragma omp for schedule(static)
      for (int64_t n = 0; n < N; ++n) f(n, omp_get_thread_num(), scratch);
    }
  } else {
    std::vector<char> scratch;
    for (int64_t n = 0; n < N; ++n) f(n, 0, scratch);
  }
}

template <typename T>
T* scratch_of(std::vector<char>& s, size_t count) {
  if (s.size() < count * sizeof(T)) s.resize(count * sizeof(T));
  return reinterpret_cast<T*>(s.data());
}

}  // namespace

template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* out) {
  const int64_t Cg = g.C / g.groups, Kg = g.K / g.groups, HWo = g.Ho * g.Wo, HW = g.H * g.W;
  const int64_t rows = Cg * g.kh * g.kw;
  const bool pointwise = is_pointwise(g);
  over_batch(g.N, [&](int64_t n, int, std::vector<char>& scratch) {
    const T* xn = x + n * g.C * HW;
    T* on = out + n * g.K * HWo;
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      const T* col = xn + gr * Cg * HW;
      if (!pointwise) {
        T* c = scratch_of<T>(scratch, size_t(rows * HWo));
        im2col(g, xn + gr * Cg * HW, Cg, c);
        col = c;
      }
      gemm<T>(Kg, HWo, rows, w + gr * Kg * rows, rows, 1, col, HWo, 1, on + gr * Kg * HWo, HWo);
    }
    if (bias)
      for (int64_t k = 0; k < g.K; ++k) {
        T b = bias[k];
        T* o = on + k * HWo;
        for (int64_t i = 0; i < HWo; ++i) o[i] += b;
      }
  });
}

template <typename T>
void conv2d_backward(const Conv2dGeometry& g, const T* x, const T* w, const T* gout, T* gx, T* gw, T* gb) {
  const int64_t Cg = g.C / g.groups, Kg = g.K / g.groups, HWo = g.Ho * g.Wo, HW = g.H * g.W;
  const int64_t rows = Cg * g.kh * g.kw;
  const bool pointwise = is_pointwise(g);
  const int nthreads = omp_get_max_threads();
  const size_t wsize = size_t(g.K * rows);
  // Per-thread weight-gradient accumulators (thread 0 writes straight into gw).
  std::vector<std::vector<T>> gw_partial(gw ? size_t(nthreads) : 0);
  if (gw) std::memset(gw, 0, sizeof(T) * wsize);
  over_batch(g.N, [&](int64_t n, int tid, std::vector<char>& scratch) {
    const T* xn = x + n * g.C * HW;
    const T* gn = gout + n * g.K * HWo;
    T* gwt = gw;
    if (gw && tid != 0) {
      auto& p = gw_partial[size_t(tid)];
      if (p.empty()) p.assign(wsize, T(0));
      gwt = p.data();
    }
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      const T* gng = gn + gr * Kg * HWo;
      if (gw) {
        const T* col = xn + gr * Cg * HW;
        if (!pointwise) {
          T* c = scratch_of<T>(scratch, size_t(rows * HWo));
          im2col(g, xn + gr * Cg * HW, Cg, c);
          col = c;
        }
        // gw_g[Kg, rows] += gout_g[Kg, HWo] * col^T[HWo, rows]
        gemm<T>(Kg, rows, HWo, gng, HWo, 1, col, 1, HWo, gwt + gr * Kg * rows, rows, /*accumulate=*/true);
      }
      if (gx) {
        T* gxn = gx + n * g.C * HW + gr * Cg * HW;
        const T* wg = w + gr * Kg * rows;
        if (pointwise) {
          // gx_g[Cg, HW] = w_g^T[Cg, Kg] * gout_g[Kg, HW]
          gemm<T>(rows, HWo, Kg, wg, 1, rows, gng, HWo, 1, gxn, HWo);
        } else {
          T* gcol = scratch_of<T>(scratch, size_t(rows * HWo));
          gemm<T>(rows, HWo, Kg, wg, 1, rows, gng, HWo, 1, gcol, HWo);
          col2im(g, gcol, Cg, gxn);
        }
      }
    }
  });
  if (gw)
    for (auto& p : gw_partial)
      if (!p.empty())
        for (size_t i = 0; i < wsize; ++i) gw[i] += p[i];
  if (gb)
    for (int64_t k = 0; k < g.K; ++k) {
      double s = 0;
      for (int64_t n = 0; n < g.N; ++n) {
        const T* p = gout + (n * g.K + k) * HWo;
        for (int64_t i = 0; i < HWo; ++i) s += double(p[i]);
      }
      gb[k] = T(s);
    }
}

template void conv2d_forward<float>(const Conv2dGeometry&, const float*, const float*, const float*, float*);
template void conv2d_forward<double>(const Conv2dGeometry&, const double*, const double*, const double*, double*);
template void conv2d_backward<float>(const Conv2dGeometry&, const float*, const float*, const float*, float*, float*,
                                     float*);
template void conv2d_backward<double>(const Conv2dGeometry&, const double*, const double*, const double*, double*,
                                      double*, double*);

}  // namespace nnkit::cpu
