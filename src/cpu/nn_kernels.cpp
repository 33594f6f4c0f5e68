// The CPU backend's pooling and indexing kernels (mirrors cuda/nn_kernels.cu): max and average
// pooling over [NC, H, W] planes (OpenMP over planes above 32 K outputs), index_select,
// index_add, gather and scatter_add with per-element index checks.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/dispatch.h"
#include "cpu/backend.h"

namespace nnkit::detail {

namespace {

// count_include_pad=True (PyTorch's default): the divisor is the window clipped to the padded
// input; [h0, h1) x [w0, w1) is the window clipped to the input.
int64_t avg_window(const PoolGeom& g, int64_t oh, int64_t ow, int64_t& h0, int64_t& h1, int64_t& w0, int64_t& w1) {
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
}

// Calls f(index_position, x_offset) for every element of `index` (contiguous), with x_offset the
// offset into a contiguous tensor of shape `xs` at the index's coordinates, dimension d replaced
// by the index value.
template <typename F>
void for_each_gather(const Shape& xs, const Tensor& index, int64_t d, const char* op, F&& f) {
  const Shape& is = index.sizes();
  const size_t nd = is.size();
  Shape xstride = contiguous_strides(xs);
  std::vector<int64_t> coord(nd, 0);
  const int64_t* ip = index.data_ptr<int64_t>();
  const int64_t n = index.numel();
  for (int64_t p = 0; p < n; ++p) {
    int64_t off = 0;
    for (size_t k = 0; k < nd; ++k)
      off += (int64_t(k) == d ? checked_index(ip[p], xs[k], op, d) : coord[k]) * xstride[k];
    f(p, off);
    for (size_t k = nd; k-- > 0;) {
      if (++coord[k] < is[k]) break;
      coord[k] = 0;
    }
  }
}
}  // namespace

void CpuBackend::max_pool2d_forward(const PoolGeom& g, const Tensor& x, const Tensor& out, const Tensor& idx) const {
  dispatch<kFloatingTypes>(x.dtype(), "max_pool2d", [&]<typename T>() {
    const T* px = x.data_ptr<T>();
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
}

void CpuBackend::max_pool2d_backward(const PoolGeom& g, const Tensor& go, const Tensor& idx, const Tensor& gx) const {
  fill(gx, 0);
  dispatch<kFloatingTypes>(go.dtype(), "max_pool2d_backward", [&]<typename T>() {
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
}

void CpuBackend::avg_pool2d_forward(const PoolGeom& g, const Tensor& x, const Tensor& out) const {
  dispatch<kFloatingTypes>(x.dtype(), "avg_pool2d", [&]<typename T>() {
    const T* px = x.data_ptr<T>();
    T* po = out.data_ptr<T>();
#pragma omp parallel for if (g.NC * g.Ho * g.Wo > 32768)
    for (int64_t c = 0; c < g.NC; ++c)
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          int64_t h0, h1, w0, w1;
          int64_t count = avg_window(g, oh, ow, h0, h1, w0, w1);
          double s = 0;
          for (int64_t i = h0; i < h1; ++i)
            for (int64_t j = w0; j < w1; ++j) s += double(px[(c * g.H + i) * g.W + j]);
          po[(c * g.Ho + oh) * g.Wo + ow] = T(s / double(count));
        }
  });
}

void CpuBackend::avg_pool2d_backward(const PoolGeom& g, const Tensor& go, const Tensor& gx) const {
  fill(gx, 0);
  dispatch<kFloatingTypes>(go.dtype(), "avg_pool2d_backward", [&]<typename T>() {
    const T* pg = go.data_ptr<T>();
    T* px = gx.data_ptr<T>();
#pragma omp parallel for if (g.NC * g.Ho * g.Wo > 32768)
    for (int64_t c = 0; c < g.NC; ++c)
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          int64_t h0, h1, w0, w1;
          int64_t count = avg_window(g, oh, ow, h0, h1, w0, w1);
          T v = pg[(c * g.Ho + oh) * g.Wo + ow] / T(count);
          for (int64_t i = h0; i < h1; ++i)
            for (int64_t j = w0; j < w1; ++j) px[(c * g.H + i) * g.W + j] += v;
        }
  });
}

void CpuBackend::index_select(const Tensor& out, const Tensor& x, const Tensor& idx, int64_t outer, int64_t n,
                              int64_t inner, int64_t d) const {
  const int64_t* ip = idx.data_ptr<int64_t>();
  const int64_t k = idx.numel();
  std::vector<int64_t> rows(static_cast<size_t>(k));
  for (int64_t j = 0; j < k; ++j) rows[size_t(j)] = checked_index(ip[j], n, "index_select", d);
  const size_t es = x.element_size();
  const char* src = static_cast<const char*>(x.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < k; ++j)
      std::memcpy(dst + size_t((o * k + j) * inner) * es, src + size_t((o * n + rows[size_t(j)]) * inner) * es,
                  size_t(inner) * es);
}

void CpuBackend::index_add(const Tensor& out, const Tensor& idx, const Tensor& src, int64_t outer, int64_t n,
                           int64_t inner, int64_t d) const {
  const int64_t* ip = idx.data_ptr<int64_t>();
  const int64_t k = idx.numel();
  dispatch<kNumericTypes>(out.dtype(), "index_add", [&]<typename T>() {
    T* o = out.data_ptr<T>();
    const T* sp = src.data_ptr<T>();
    for (int64_t j = 0; j < k; ++j) {
      const int64_t r = checked_index(ip[j], n, "index_add", d);
      for (int64_t a = 0; a < outer; ++a) {
        T* dst = o + (a * n + r) * inner;
        const T* from = sp + (a * k + j) * inner;
        for (int64_t i = 0; i < inner; ++i) dst[i] += from[i];
      }
    }
  });
}

void CpuBackend::gather(const Tensor& out, const Tensor& x, const Tensor& idx, int64_t d) const {
  dispatch<kAllTypes>(x.dtype(), "gather", [&]<typename T>() {
    const T* src = x.data_ptr<T>();
    T* o = out.data_ptr<T>();
    for_each_gather(x.sizes(), idx, d, "gather", [&](int64_t p, int64_t off) { o[p] = src[off]; });
  });
}

void CpuBackend::scatter_add(const Tensor& out, const Tensor& idx, const Tensor& src, int64_t d) const {
  dispatch<kNumericTypes>(out.dtype(), "scatter_add", [&]<typename T>() {
    T* o = out.data_ptr<T>();
    const T* sp = src.data_ptr<T>();
    for_each_gather(out.sizes(), idx, d, "scatter_add", [&](int64_t p, int64_t off) { o[off] += sp[p]; });
  });
}

}  // namespace nnkit::detail
