// Pooling and indexing CUDA kernels: max/avg pooling over [NC, H, W] planes (forward and
// backward, with the CPU kernels' window arithmetic and NaN rule), index_select / index_add and
// gather / scatter_add (the adds with atomics). Index values are range-checked by the callers
// (on the host, from the index tensor's min and max) before these run; the kernels only wrap
// negative indices.
#include <cstdint>
#include <limits>

#include "ops/common.h"
#include "cuda_kernels.h"
#include "runtime.h"

namespace nnkit::cuda_detail {
namespace {

constexpr int kThreads = 256;

// Grid-stride loop over [0, n) with 64-bit indices.
#define NNKIT_KERNEL_LOOP(i, n)                                                       \
  for (int64_t i = int64_t(blockIdx.x) * int64_t(blockDim.x) + int64_t(threadIdx.x); \
       i < (n); i += int64_t(blockDim.x) * int64_t(gridDim.x))

using detail::dispatch_bits;
// int64, float32, float64 (the dtypes the CPU's index_add and scatter_add accept).
inline constexpr detail::DtypeSet kAtomicTypes =
    detail::dtype_bit(kInt64) | detail::dtype_bit(kFloat32) | detail::dtype_bit(kFloat64);

__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int64_t* p, int64_t v) {
  // Two's complement: an unsigned 64-bit add gives the signed sum (wrapping like the CPU's).
  atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
}

__device__ __forceinline__ int64_t wrap_index(int64_t v, int64_t size) { return v < 0 ? v + size : v; }

// ---- pooling ----

// Max pooling: the window clipped to the input (padding acts as -inf); the first maximum wins,
// a NaN wins and ends the scan (as the CPU kernel). Index -1 for a window with no input element.
template <typename T>
__global__ void max_pool2d_forward_kernel(PoolGeom g, const T* __restrict__ x, T* __restrict__ out,
                                          int64_t* __restrict__ indices) {
  const int64_t total = g.NC * g.Ho * g.Wo;
  NNKIT_KERNEL_LOOP(t, total) {
    const int64_t ow = t % g.Wo, oh = (t / g.Wo) % g.Ho, c = t / (g.Wo * g.Ho);
    const int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    const int64_t hb = h0 > 0 ? h0 : 0, he = h0 + g.kh < g.H ? h0 + g.kh : g.H;
    const int64_t wb = w0 > 0 ? w0 : 0, we = w0 + g.kw < g.W ? w0 + g.kw : g.W;
    const T* plane = x + c * g.H * g.W;
    T best = -std::numeric_limits<T>::infinity();
    int64_t bi = -1;
    bool found_nan = false;
    for (int64_t i = hb; i < he && !found_nan; ++i)
      for (int64_t j = wb; j < we; ++j) {
        const T v = plane[i * g.W + j];
        const bool is_nan = v != v;
        if (bi < 0 || v > best || is_nan) {
          best = v;
          bi = i * g.W + j;
          if (is_nan) {
            found_nan = true;
            break;
          }
        }
      }
    out[t] = best;
    indices[t] = bi;
  }
}

// dx (zeroed first) [c, indices[c, k]] += dy[c, k]; windows overlap, hence the atomics.
template <typename T>
__global__ void max_pool2d_backward_kernel(PoolGeom g, const T* __restrict__ dy, const int64_t* __restrict__ indices,
                                           T* __restrict__ dx) {
  const int64_t per_plane = g.Ho * g.Wo, total = g.NC * per_plane;
  NNKIT_KERNEL_LOOP(t, total) {
    const int64_t i = indices[t];
    if (i >= 0) atomic_add(dx + (t / per_plane) * g.H * g.W + i, dy[t]);
  }
}

// The CPU's count_include_pad window: [h0, h1) x [w0, w1) clipped to the input, and the divisor
// (the window clipped to the padded input).
__device__ __forceinline__ int64_t avg_window(const PoolGeom& g, int64_t oh, int64_t ow, int64_t& h0, int64_t& h1,
                                              int64_t& w0, int64_t& w1) {
  h0 = oh * g.sh - g.ph;
  w0 = ow * g.sw - g.pw;
  h1 = h0 + g.kh < g.H + g.ph ? h0 + g.kh : g.H + g.ph;
  w1 = w0 + g.kw < g.W + g.pw ? w0 + g.kw : g.W + g.pw;
  const int64_t count = (h1 - h0) * (w1 - w0);
  h0 = h0 > 0 ? h0 : 0;
  w0 = w0 > 0 ? w0 : 0;
  h1 = h1 < g.H ? h1 : g.H;
  w1 = w1 < g.W ? w1 : g.W;
  return count;
}

// Sum in double in the CPU's order (row by row), then divide: the CPU's result bit for bit.
template <typename T>
__global__ void avg_pool2d_forward_kernel(PoolGeom g, const T* __restrict__ x, T* __restrict__ out) {
  const int64_t total = g.NC * g.Ho * g.Wo;
  NNKIT_KERNEL_LOOP(t, total) {
    const int64_t ow = t % g.Wo, oh = (t / g.Wo) % g.Ho, c = t / (g.Wo * g.Ho);
    int64_t h0, h1, w0, w1;
    const int64_t count = avg_window(g, oh, ow, h0, h1, w0, w1);
    const T* plane = x + c * g.H * g.W;
    double s = 0;
    for (int64_t i = h0; i < h1; ++i)
      for (int64_t j = w0; j < w1; ++j) s += double(plane[i * g.W + j]);
    out[t] = T(s / double(count));
  }
}

// Gather form (no atomics): each input element sums dy / count over the windows that contain
// it, in the CPU's order (oh, then ow, ascending) and precision (T).
template <typename T>
__global__ void avg_pool2d_backward_kernel(PoolGeom g, const T* __restrict__ dy, T* __restrict__ dx) {
  const int64_t total = g.NC * g.H * g.W;
  NNKIT_KERNEL_LOOP(t, total) {
    const int64_t j = t % g.W, i = (t / g.W) % g.H, c = t / (g.W * g.H);
    // Windows with o * s - p <= i < o * s - p + k: o in [lo, hi].
    const int64_t nh = i + g.ph - g.kh, nw = j + g.pw - g.kw;
    const int64_t oh_lo = nh < 0 ? 0 : nh / g.sh + 1, ow_lo = nw < 0 ? 0 : nw / g.sw + 1;
    const int64_t oh_hi = (i + g.ph) / g.sh < g.Ho - 1 ? (i + g.ph) / g.sh : g.Ho - 1;
    const int64_t ow_hi = (j + g.pw) / g.sw < g.Wo - 1 ? (j + g.pw) / g.sw : g.Wo - 1;
    const T* dplane = dy + c * g.Ho * g.Wo;
    T acc = T(0);
    for (int64_t oh = oh_lo; oh <= oh_hi; ++oh)
      for (int64_t ow = ow_lo; ow <= ow_hi; ++ow) {
        int64_t h0, h1, w0, w1;
        const int64_t count = avg_window(g, oh, ow, h0, h1, w0, w1);
        if (i < h0 || i >= h1 || j < w0 || j >= w1) continue;  // cannot happen; kept as a guard
        acc += dplane[oh * g.Wo + ow] / T(count);
      }
    dx[t] = acc;
  }
}

// ---- index_select / index_add over [outer, n, inner] ----

template <typename T>
__global__ void index_select_kernel(const T* __restrict__ x, const int64_t* __restrict__ index, T* __restrict__ out,
                                    int64_t total, int64_t k, int64_t n, int64_t inner) {
  NNKIT_KERNEL_LOOP(t, total) {
    const int64_t i = t % inner, j = (t / inner) % k, o = t / (inner * k);
    out[t] = x[(o * n + wrap_index(index[j], n)) * inner + i];
  }
}

template <typename T>
__global__ void index_add_kernel(T* __restrict__ out, const int64_t* __restrict__ index, const T* __restrict__ src,
                                 int64_t total, int64_t k, int64_t n, int64_t inner) {
  NNKIT_KERNEL_LOOP(t, total) {
    const int64_t i = t % inner, j = (t / inner) % k, o = t / (inner * k);
    atomic_add(out + (o * n + wrap_index(index[j], n)) * inner + i, src[t]);
  }
}

// ---- gather / scatter_add ----

constexpr int kMaxDims = 25;

// Offset into a contiguous tensor (strides xstride) at the coordinates of flat position p of
// the contiguous index tensor (sizes isize), dimension d replaced by the (wrapped) index value.
struct GatherGeom {
  int ndim = 0, d = 0;
  int64_t dsize = 0;  // the indexed tensor's size along d
  int64_t isize[kMaxDims] = {};
  int64_t xstride[kMaxDims] = {};

  __device__ int64_t offset(int64_t p, int64_t index_value) const {
    int64_t off = 0;
    for (int k = ndim - 1; k >= 0; --k) {
      const int64_t c = p % isize[k];
      p /= isize[k];
      off += (k == d ? wrap_index(index_value, dsize) : c) * xstride[k];
    }
    return off;
  }
};

GatherGeom gather_geom(const Shape& xs, const Tensor& index, int64_t dim, const char* op) {
  const Shape& is = index.sizes();
  NNKIT_CHECK(is.size() == xs.size(), "[", op, "] index must have as many dimensions as the input");
  NNKIT_CHECK(xs.size() <= size_t(kMaxDims), "[", op, "] tensors with more than ", kMaxDims,
              " dimensions are not supported on CUDA");
  GatherGeom g;
  g.ndim = int(xs.size());
  g.d = int(dim);
  g.dsize = g.ndim == 0 ? 1 : xs[size_t(dim)];
  Shape st = contiguous_strides(xs);
  for (int k = 0; k < g.ndim; ++k) {
    g.isize[k] = is[size_t(k)];
    g.xstride[k] = st[size_t(k)];
  }
  return g;
}

template <typename T>
__global__ void gather_kernel(GatherGeom g, const T* __restrict__ x, const int64_t* __restrict__ index,
                              T* __restrict__ out, int64_t total) {
  NNKIT_KERNEL_LOOP(p, total) out[p] = x[g.offset(p, index[p])];
}

template <typename T>
__global__ void scatter_add_kernel(GatherGeom g, T* __restrict__ out, const int64_t* __restrict__ index,
                                   const T* __restrict__ src, int64_t total) {
  NNKIT_KERNEL_LOOP(p, total) atomic_add(out + g.offset(p, index[p]), src[p]);
}

void check_contiguous(const Tensor& t, const char* op) {
  NNKIT_CHECK(t.is_contiguous(), "[", op, "] internal error: the CUDA kernel expects contiguous tensors");
}

}  // namespace

void max_pool2d_forward(const PoolGeom& g, const Tensor& x, const Tensor& out, const Tensor& indices) {
  const char* op = "max_pool2d";
  check_contiguous(x, op);
  const int64_t total = g.NC * g.Ho * g.Wo;
  if (total == 0) return;
  const int dev = prepare(out);
  cudaStream_t stream = current_stream(dev);
  detail::dispatch<detail::kFloatingTypes>(x.dtype(), op, [&]<typename T>() {
    max_pool2d_forward_kernel<T><<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        g, x.data_ptr<T>(), out.data_ptr<T>(), indices.data_ptr<int64_t>());
    check_launch(op);
  });
}

void max_pool2d_backward(const PoolGeom& g, const Tensor& dy, const Tensor& indices, const Tensor& dx) {
  const char* op = "max_pool2d_backward";
  check_contiguous(dy, op);
  check_contiguous(dx, op);
  if (dx.numel() == 0) return;
  const int dev = prepare(dx);
  cudaStream_t stream = current_stream(dev);
  NNKIT_CUDA_CHECK(cudaMemsetAsync(dx.raw_data(), 0, dx.nbytes(), stream), op);
  const int64_t total = g.NC * g.Ho * g.Wo;
  if (total == 0) return;
  detail::dispatch<detail::kFloatingTypes>(dy.dtype(), op, [&]<typename T>() {
    max_pool2d_backward_kernel<T><<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        g, dy.data_ptr<T>(), indices.data_ptr<int64_t>(), dx.data_ptr<T>());
    check_launch(op);
  });
}

void avg_pool2d_forward(const PoolGeom& g, const Tensor& x, const Tensor& out) {
  const char* op = "avg_pool2d";
  check_contiguous(x, op);
  const int64_t total = g.NC * g.Ho * g.Wo;
  if (total == 0) return;
  const int dev = prepare(out);
  cudaStream_t stream = current_stream(dev);
  detail::dispatch<detail::kFloatingTypes>(x.dtype(), op, [&]<typename T>() {
    avg_pool2d_forward_kernel<T><<<grid_for(total, kThreads), kThreads, 0, stream>>>(g, x.data_ptr<T>(),
                                                                                       out.data_ptr<T>());
    check_launch(op);
  });
}

void avg_pool2d_backward(const PoolGeom& g, const Tensor& dy, const Tensor& dx) {
  const char* op = "avg_pool2d_backward";
  check_contiguous(dy, op);
  check_contiguous(dx, op);
  const int64_t total = g.NC * g.H * g.W;
  if (total == 0) return;
  const int dev = prepare(dx);
  cudaStream_t stream = current_stream(dev);
  detail::dispatch<detail::kFloatingTypes>(dy.dtype(), op, [&]<typename T>() {
    avg_pool2d_backward_kernel<T><<<grid_for(total, kThreads), kThreads, 0, stream>>>(g, dy.data_ptr<T>(),
                                                                                        dx.data_ptr<T>());
    check_launch(op);
  });
}

void index_select(const Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t n, int64_t inner) {
  const char* op = "index_select";
  check_contiguous(x, op);
  check_contiguous(index, op);
  const int64_t k = index.numel(), total = outer * k * inner;
  NNKIT_CHECK(total == out.numel(), "[", op, "] internal error: output of ", out.numel(), " elements for ", total);
  if (total == 0) return;
  const int dev = prepare(out);
  cudaStream_t stream = current_stream(dev);
  dispatch_bits(x.dtype(), [&]<typename B>() {
    index_select_kernel<B><<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        static_cast<const B*>(x.raw_data()), index.data_ptr<int64_t>(), static_cast<B*>(out.raw_data()), total, k, n,
        inner);
    check_launch(op);
  });
}

void index_add(const Tensor& out, const Tensor& index, const Tensor& src, int64_t outer, int64_t n, int64_t inner) {
  const char* op = "index_add";
  check_contiguous(out, op);
  check_contiguous(index, op);
  check_contiguous(src, op);
  const int64_t k = index.numel(), total = outer * k * inner;
  NNKIT_CHECK(total == src.numel(), "[", op, "] internal error: source of ", src.numel(), " elements for ", total);
  if (total == 0) return;
  const int dev = prepare(out);
  cudaStream_t stream = current_stream(dev);
  detail::dispatch<kAtomicTypes>(out.dtype(), op, [&]<typename T>() {
    index_add_kernel<T><<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        out.data_ptr<T>(), index.data_ptr<int64_t>(), src.data_ptr<T>(), total, k, n, inner);
    check_launch(op);
  });
}

void gather(const Tensor& out, const Tensor& x, const Tensor& index, int64_t dim) {
  const char* op = "gather";
  check_contiguous(x, op);
  check_contiguous(index, op);
  check_contiguous(out, op);
  const int64_t total = index.numel();
  if (total == 0) return;
  const GatherGeom g = gather_geom(x.sizes(), index, dim, op);
  const int dev = prepare(out);
  cudaStream_t stream = current_stream(dev);
  dispatch_bits(x.dtype(), [&]<typename B>() {
    gather_kernel<B><<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        g, static_cast<const B*>(x.raw_data()), index.data_ptr<int64_t>(), static_cast<B*>(out.raw_data()), total);
    check_launch(op);
  });
}

void scatter_add(const Tensor& out, const Tensor& index, const Tensor& src, int64_t dim) {
  const char* op = "scatter_add";
  check_contiguous(out, op);
  check_contiguous(index, op);
  check_contiguous(src, op);
  const int64_t total = index.numel();
  if (total == 0) return;
  const GatherGeom g = gather_geom(out.sizes(), index, dim, op);
  const int dev = prepare(out);
  cudaStream_t stream = current_stream(dev);
  detail::dispatch<kAtomicTypes>(out.dtype(), op, [&]<typename T>() {
    scatter_add_kernel<T><<<grid_for(total, kThreads), kThreads, 0, stream>>>(g, out.data_ptr<T>(),
                                                                                index.data_ptr<int64_t>(),
                                                                                src.data_ptr<T>(), total);
    check_launch(op);
  });
}

}  // namespace nnkit::cuda_detail
