// Reductions over the rows of a contiguous [rows, n] tensor (the ops in src/ops/reduce.cpp move
// the reduced dimensions last first) and softmax / log_softmax. A row is reduced by one warp,
// or by a whole block of 256 threads when rows are long and few. Floating-point sums
// accumulate in double, as on the CPU, so both devices agree to float32 rounding.
#include <math_constants.h>

#include <cfloat>
#include <limits>

#include "device_math.cuh"
#include "ops/common.h"
#include "cuda_kernels.h"
#include "ops/scalar_math.h"
#include "runtime.h"

namespace nnkit::cuda_detail {
namespace {

constexpr int kBlock = 256;

template <typename T>
using AccOf = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;


// Sum of `v` over the `Threads` threads that share a row (a warp, or the whole block through
// shared memory); every one of them gets the result.
template <int Threads, typename Acc>
__device__ Acc row_sum(Acc v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  if constexpr (Threads == 32) {
    return __shfl_sync(0xffffffffu, v, 0);
  } else {
    __shared__ Acc part[kBlock / 32];
    __shared__ Acc total;
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
      Acc t = 0;
      for (int w = 0; w < kBlock / 32; ++w) t += part[w];
      total = t;
    }
    __syncthreads();
    Acc r = total;
    __syncthreads();  // `total` and `part` are reused by the next call
    return r;
  }
}

// Rows handled by this thread's group: group g of G groups takes rows g, g + G, ...
template <int Threads>
struct RowWalk {
  int64_t first, step;
  int lane;
  __device__ RowWalk() {
    if constexpr (Threads == 32) {
      first = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
      step = int64_t(gridDim.x) * blockDim.x / 32;
      lane = threadIdx.x % 32;
    } else {
      first = blockIdx.x;
      step = gridDim.x;
      lane = threadIdx.x;
    }
  }
};

// mode: 0 sum, 1 mean, 2 var, 3 std.
template <int Threads, typename In, typename Out>
__global__ void moments_kernel(const In* x, Out* out, int64_t rows, int64_t n, int mode, double correction) {
  using Acc = AccOf<In>;
  RowWalk<Threads> w;
  // Every thread of a group runs the same number of iterations (the shuffles need all lanes).
  for (int64_t r = w.first; r < rows; r += w.step) {
    const In* row = x + r * n;
    Acc s = 0;
    for (int64_t i = w.lane; i < n; i += Threads) s += Acc(row[i]);
    s = row_sum<Threads>(s);
    if (mode <= 1) {
      if (w.lane == 0) {
        if (mode == 0) out[r] = static_cast<Out>(s);
        else out[r] = static_cast<Out>(double(s) / double(n));
      }
      continue;
    }
    double mean = double(s) / double(n);
    double m2 = 0;
    for (int64_t i = w.lane; i < n; i += Threads) {
      double d = double(row[i]) - mean;
      m2 += d * d;
    }
    m2 = row_sum<Threads>(m2);
    if (w.lane == 0) {
      double denom = n - correction > 0 ? double(n) - correction : 0.0;
      double v = m2 / denom;
      out[r] = static_cast<Out>(mode == 3 ? ::sqrt(v) : v);
    }
  }
}

// Does candidate (bv, bi) replace the best so far (av, ai)? NaN wins; ties go to the lower index.
template <typename T>
__device__ bool take_b(T av, int64_t ai, T bv, int64_t bi, bool is_max) {
  if (bi < 0) return false;
  if (ai < 0) return true;
  bool an = detail::is_nan_value(av), bn = detail::is_nan_value(bv);
  if (an || bn) return (an && bn) ? bi < ai : bn;
  if (bv == av) return bi < ai;
  return is_max ? bv > av : bv < av;
}

template <int Threads, typename T>
__global__ void best_kernel(const T* x, T* values, int64_t* indices, int64_t rows, int64_t n, bool is_max) {
  RowWalk<Threads> w;
  __shared__ T sv[kBlock];
  __shared__ int64_t si[kBlock];
  for (int64_t r = w.first; r < rows; r += w.step) {
    const T* row = x + r * n;
    T bv = T();
    int64_t bi = -1;
    for (int64_t i = w.lane; i < n; i += Threads)
      if (take_b(bv, bi, row[i], i, is_max)) {
        bv = row[i];
        bi = i;
      }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      T ov = __shfl_down_sync(0xffffffffu, bv, o);
      int64_t oi = __shfl_down_sync(0xffffffffu, bi, o);
      if (take_b(bv, bi, ov, oi, is_max)) {
        bv = ov;
        bi = oi;
      }
    }
    if constexpr (Threads != 32) {
      int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
      if (lane == 0) {
        sv[warp] = bv;
        si[warp] = bi;
      }
      __syncthreads();
      if (threadIdx.x == 0)
        for (int k = 1; k < kBlock / 32; ++k)
          if (take_b(bv, bi, sv[k], si[k], is_max)) {
            bv = sv[k];
            bi = si[k];
          }
      __syncthreads();
    }
    if (w.lane == 0) {
      if (values) values[r] = bv;
      if (indices) indices[r] = bi;
    }
  }
}

// Long rows and few of them: a block per row; otherwise a warp per row.
bool block_per_row(int64_t rows, int64_t n) { return n >= 4096 && rows < 4096; }

unsigned grid_rows(int64_t rows, bool block) {
  int64_t blocks = block ? rows : (rows + kBlock / 32 - 1) / (kBlock / 32);
  return unsigned(std::max<int64_t>(1, std::min<int64_t>(blocks, int64_t(1) << 20)));
}

template <typename In, typename Out>
void moments(const Tensor& out, const Tensor& x, int mode, double correction) {
  int64_t rows = x.size(0), n = x.size(1);
  int dev = prepare(x);
  cudaStream_t s = current_stream(dev);
  const In* px = static_cast<const In*>(x.raw_data());
  Out* po = static_cast<Out*>(out.raw_data());
  bool block = block_per_row(rows, n);
  if (block)
    moments_kernel<kBlock, In, Out><<<grid_rows(rows, true), kBlock, 0, s>>>(px, po, rows, n, mode, correction);
  else
    moments_kernel<32, In, Out><<<grid_rows(rows, false), kBlock, 0, s>>>(px, po, rows, n, mode, correction);
  check_launch("reduce");
}

template <typename T>
void best(const Tensor& values, const Tensor& indices, const Tensor& x, bool is_max) {
  int64_t rows = x.size(0), n = x.size(1);
  int dev = prepare(x);
  cudaStream_t s = current_stream(dev);
  const T* px = static_cast<const T*>(x.raw_data());
  T* pv = values.defined() ? static_cast<T*>(values.raw_data()) : nullptr;
  int64_t* pi = indices.defined() ? static_cast<int64_t*>(indices.raw_data()) : nullptr;
  if (block_per_row(rows, n))
    best_kernel<kBlock, T><<<grid_rows(rows, true), kBlock, 0, s>>>(px, pv, pi, rows, n, is_max);
  else
    best_kernel<32, T><<<grid_rows(rows, false), kBlock, 0, s>>>(px, pv, pi, rows, n, is_max);
  check_launch("max");
}

// ---- softmax ----
// inner == 1: a warp (or block) per row of n contiguous values.
template <int Threads, typename T>
__global__ void softmax_rows_kernel(const T* x, T* y, int64_t rows, int64_t n, bool log) {
  RowWalk<Threads> w;
  for (int64_t r = w.first; r < rows; r += w.step) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    // max: the sum machinery on -max (a float max reduction via shuffles).
    double mx = -CUDART_INF;
    for (int64_t i = w.lane; i < n; i += Threads) mx = ::fmax(mx, double(xr[i]));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) mx = ::fmax(mx, __shfl_down_sync(0xffffffffu, mx, o));
    if constexpr (Threads == 32) {
      mx = __shfl_sync(0xffffffffu, mx, 0);
    } else {
      __shared__ double part[kBlock / 32];
      __shared__ double total;
      if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = mx;
      __syncthreads();
      if (threadIdx.x == 0) {
        double t = part[0];
        for (int k = 1; k < kBlock / 32; ++k) t = ::fmax(t, part[k]);
        total = t;
      }
      __syncthreads();
      mx = total;
      __syncthreads();
    }
    // A row that is all -inf gives NaN like the CPU path (max treated as 0 there).
    T m = T(mx);
    if (::isinf(mx) && mx < 0) m = T(0);
    double sum = 0;
    for (int64_t i = w.lane; i < n; i += Threads) sum += ::exp(double(xr[i] - m));
    sum = row_sum<Threads>(sum);
    if (log) {
      T lse = T(::log(sum)) + m;
      for (int64_t i = w.lane; i < n; i += Threads) yr[i] = xr[i] - lse;
    } else {
      double inv = 1.0 / sum;
      for (int64_t i = w.lane; i < n; i += Threads) yr[i] = T(::exp(double(xr[i] - m)) * inv);
    }
  }
}

// inner > 1: a thread per (outer, inner) pair walking n values with stride inner (coalesced
// across neighbouring threads).
template <typename T>
__global__ void softmax_strided_kernel(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  int64_t total = outer * inner;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    int64_t o = t / inner, i = t % inner;
    const T* xp = x + o * n * inner + i;
    T* yp = y + o * n * inner + i;
    T m = T(-CUDART_INF);
    for (int64_t k = 0; k < n; ++k) m = xp[k * inner] > m ? xp[k * inner] : m;
    if (::isinf(double(m)) && m < 0) m = T(0);
    double sum = 0;
    for (int64_t k = 0; k < n; ++k) sum += ::exp(double(xp[k * inner] - m));
    if (log) {
      T lse = T(::log(sum)) + m;
      for (int64_t k = 0; k < n; ++k) yp[k * inner] = xp[k * inner] - lse;
    } else {
      double inv = 1.0 / sum;
      for (int64_t k = 0; k < n; ++k) yp[k * inner] = T(::exp(double(xp[k * inner] - m)) * inv);
    }
  }
}

template <typename T>
void softmax_typed(const Tensor& out, const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log) {
  int dev = prepare(x);
  cudaStream_t s = current_stream(dev);
  const T* px = static_cast<const T*>(x.raw_data());
  T* py = static_cast<T*>(out.raw_data());
  if (inner == 1) {
    if (block_per_row(outer, n))
      softmax_rows_kernel<kBlock, T><<<grid_rows(outer, true), kBlock, 0, s>>>(px, py, outer, n, log);
    else
      softmax_rows_kernel<32, T><<<grid_rows(outer, false), kBlock, 0, s>>>(px, py, outer, n, log);
  } else {
    softmax_strided_kernel<T><<<grid_for(outer * inner), kBlock, 0, s>>>(px, py, outer, n, inner, log);
  }
  check_launch(log ? "log_softmax" : "softmax");
}

}  // namespace

void reduce_rows(const Tensor& out, const Tensor& x, detail::Reduce op, double correction) {
  if (out.numel() == 0) return;
  NNKIT_CHECK(x.dim() == 2 && x.is_contiguous() && out.numel() == x.size(0), "[reduce] internal error: bad row layout");
  if (op == detail::Reduce::Max || op == detail::Reduce::Min) {
    best_rows(out, Tensor(), x, op == detail::Reduce::Max);
    return;
  }
  int mode = op == detail::Reduce::Sum ? 0 : op == detail::Reduce::Mean ? 1 : op == detail::Reduce::Var ? 2 : 3;
  if (is_floating_point(x.dtype())) {
    NNKIT_CHECK(out.dtype() == x.dtype(), "[reduce] internal error: output dtype");
    detail::dispatch<detail::kFloatingTypes>(x.dtype(), "reduce",
                                             [&]<typename T>() { moments<T, T>(out, x, mode, correction); });
  } else {
    NNKIT_CHECK(mode == 0 && out.dtype() == kInt64, "[reduce] only sums of integer or bool tensors are defined");
    detail::dispatch<detail::kAllTypes & ~detail::kFloatingTypes>(
        x.dtype(), "sum", [&]<typename T>() { moments<T, int64_t>(out, x, 0, 0); });
  }
}

void best_rows(const Tensor& values, const Tensor& indices, const Tensor& x, bool is_max) {
  if (x.size(0) == 0) return;
  NNKIT_CHECK(x.dim() == 2 && x.is_contiguous(), "[max] internal error: bad row layout");
  if (x.dtype() == kBool) {
    // Shuffles do not move bools: reduce an int64 copy, convert the values back.
    Tensor xi = empty(x.sizes(), {.dtype = kInt64, .device = x.device()});
    copy(xi, x);
    Tensor vi = values.defined() ? empty(values.sizes(), {.dtype = kInt64, .device = x.device()}) : Tensor();
    best<int64_t>(vi, indices, xi, is_max);
    if (values.defined()) copy(values, vi);
    return;
  }
  detail::dispatch<detail::kNumericTypes>(x.dtype(), is_max ? "max" : "min",
                                          [&]<typename T>() { best<T>(values, indices, x, is_max); });
}

void softmax(const Tensor& out, const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log) {
  if (out.numel() == 0) return;
  detail::dispatch<detail::kFloatingTypes>(x.dtype(), log ? "log_softmax" : "softmax",
                                           [&]<typename T>() { softmax_typed<T>(out, x, outer, n, inner, log); });
}

}  // namespace nnkit::cuda_detail
