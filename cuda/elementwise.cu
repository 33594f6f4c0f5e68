// Elementwise CUDA kernels: one strided, broadcasting loop (like PyTorch's TensorIterator, much
// simplified) instantiated for copies with dtype conversion, binary and scalar arithmetic,
// unary math, comparisons, where and clamp; plus host <-> device copies.
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "ops/common.h"
#include "cuda_kernels.h"
#include "ops/scalar_math.h"
#include "device_math.cuh"
#include "runtime.h"

namespace nnkit::cuda_detail {
namespace {

constexpr int kMaxDims = 25;  // 4 operands x 25 strides stay well under the 4 KB of kernel parameters

// Element offsets of N operands (operand 0 is the output) for a flat output index. ndim == 0
// means every operand is contiguous with the output's layout: offset == index.
template <int N>
struct Indexer {
  int ndim = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[N][kMaxDims];

  __device__ void offsets(int64_t i, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = ndim == 0 ? i : 0;
    for (int d = ndim - 1; d >= 0; --d) {
      int64_t s = sizes[d];
      int64_t idx = i % s;
      i /= s;
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
    }
  }
};

// Strides of `t` broadcast to `shape` (0 where t has size 1 or lacks the dimension).
void broadcast_strides(const Tensor& t, const Shape& shape, int64_t* out) {
  int64_t n = int64_t(shape.size()), k = t.dim();
  for (int64_t d = 0; d < n; ++d) {
    int64_t td = d - (n - k);
    out[d] = (td < 0 || t.size(td) == 1) ? 0 : t.stride(td);
  }
}

template <int N>
Indexer<N> make_indexer(const Tensor& out, const Tensor* const* in, const char* op) {
  const Shape& shape = out.sizes();
  int64_t nd = int64_t(shape.size());
  // Up to 64 dims before coalescing; each operand's strides over the output's shape.
  int64_t st[N][64];
  int64_t sz[64];
  NNKIT_CHECK(nd <= 64, "[", op, "] tensors with more than 64 dimensions are not supported on CUDA");
  for (int64_t d = 0; d < nd; ++d) sz[d] = shape[size_t(d)];
  broadcast_strides(out, shape, st[0]);
  for (int k = 1; k < N; ++k) broadcast_strides(*in[k - 1], shape, st[k]);
  // Drop size-1 dims and merge dims that are contiguous in every operand.
  int64_t csz[64], cst[N][64];
  int m = 0;
  for (int64_t d = 0; d < nd; ++d) {
    if (sz[d] == 1) continue;
    bool merge = m > 0;
    for (int k = 0; k < N && merge; ++k) merge = cst[k][m - 1] == st[k][d] * sz[d];
    if (merge) {
      csz[m - 1] *= sz[d];
      for (int k = 0; k < N; ++k) cst[k][m - 1] = st[k][d];
    } else {
      csz[m] = sz[d];
      for (int k = 0; k < N; ++k) cst[k][m] = st[k][d];
      ++m;
    }
  }
  Indexer<N> ix;
  bool contiguous = m <= 1;
  for (int k = 0; k < N && contiguous; ++k) contiguous = m == 0 || cst[k][0] == 1;
  if (contiguous) return ix;  // ndim 0: flat
  NNKIT_CHECK(m <= kMaxDims, "[", op, "] this strided layout has more than ", kMaxDims,
              " non-mergeable dimensions; call .contiguous() first");
  ix.ndim = m;
  for (int d = 0; d < m; ++d) {
    ix.sizes[d] = csz[d];
    for (int k = 0; k < N; ++k) ix.strides[k][d] = cst[k][d];
  }
  return ix;
}

template <int N>
struct Ptrs {
  char* p[N];
};

template <typename Out, typename... In, typename F, size_t... I>
__device__ Out apply(const F& f, const Ptrs<sizeof...(In) + 1>& a, const int64_t (&off)[sizeof...(In) + 1],
                     std::index_sequence<I...>) {
  return f(reinterpret_cast<const In*>(a.p[I + 1])[off[I + 1]]...);
}

template <typename Out, typename F, typename... In>
__global__ void elementwise_kernel(int64_t n, Indexer<sizeof...(In) + 1> ix, Ptrs<sizeof...(In) + 1> a, F f) {
  constexpr int N = sizeof...(In) + 1;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[N];
    ix.offsets(i, off);
    reinterpret_cast<Out*>(a.p[0])[off[0]] = apply<Out, In...>(f, a, off, std::index_sequence_for<In...>{});
  }
}

// out[i] = f(in[i]...) over out's shape, inputs broadcast; dtypes must match Out and In...
template <typename Out, typename... In, typename F>
void launch(const char* op, const Tensor& out, std::initializer_list<const Tensor*> inputs, F f) {
  static_assert(sizeof...(In) >= 1);
  int64_t n = out.numel();
  if (n == 0) return;
  constexpr int N = sizeof...(In) + 1;
  const Tensor* in[N - 1] = {};
  NNKIT_CHECK(inputs.size() == size_t(N - 1), "[", op, "] internal error: wrong number of operands");
  int k = 0;
  for (const Tensor* t : inputs) in[k++] = t;
  Indexer<N> ix = make_indexer<N>(out, in, op);
  Ptrs<N> a;
  a.p[0] = static_cast<char*>(out.raw_data());
  for (int j = 1; j < N; ++j) a.p[j] = static_cast<char*>(const_cast<void*>(in[j - 1]->raw_data()));
  int dev = prepare(out);
  elementwise_kernel<Out, F, In...><<<grid_for(n), 256, 0, current_stream(dev)>>>(n, ix, a, f);
  check_launch(op);
}

// Scalar rules shared with the CPU kernels (src/ops/scalar_math.h).
using detail::max_value;
using detail::min_value;
using detail::pow_value;

template <typename T>
void binary_typed(const Tensor& out, const Tensor& a, const Tensor& b, Bin op, double alpha_d) {
  const char* name = "binary";
  T alpha = static_cast<T>(alpha_d);
  auto run = [&](auto f) { launch<T, T, T>(name, out, {&a, &b}, f); };
  switch (op) {
    case Bin::Add:
      if (alpha_d == 1) run([] __device__(T x, T y) { return T(x + y); });
      else run([alpha] __device__(T x, T y) { return T(x + alpha * y); });
      break;
    case Bin::Sub:
      if (alpha_d == 1) run([] __device__(T x, T y) { return T(x - y); });
      else run([alpha] __device__(T x, T y) { return T(x - alpha * y); });
      break;
    case Bin::Mul: run([] __device__(T x, T y) { return T(x * y); }); break;
    case Bin::Div: run([] __device__(T x, T y) { return T(x / y); }); break;
    case Bin::Pow: run([] __device__(T x, T y) { return pow_value(x, y); }); break;
    case Bin::Max: run([] __device__(T x, T y) { return max_value(x, y); }); break;
    case Bin::Min: run([] __device__(T x, T y) { return min_value(x, y); }); break;
  }
}

template <typename T>
void unary_typed(const Tensor& out, const Tensor& x, Un op) {
  // One kernel per row of src/ops/unary_ops.h (the CPU kernels come from the same rows).
  switch (op) {
#define NNKIT_UN_KERNEL_(E, fn, api, node, dt, sv, value, grad)                                   \
  case Un::E:                                                                                      \
    if constexpr (detail::UnDtypes::dt == detail::UnDtypes::Any || std::is_floating_point_v<T>)                                 \
      launch<T, T>(#fn, out, {&x}, [] __device__(T v) { return T(value); });                       \
    break;
    NNKIT_UNARY_OPS(NNKIT_UN_KERNEL_)
#undef NNKIT_UN_KERNEL_
  }
}

// Host <-> device or device <-> device copy of whole contiguous byte ranges.
void memcpy_between(void* dst, Device dd, const void* src, Device sd, size_t bytes) {
  if (bytes == 0) return;
  if (dd.is_cuda() && sd.is_cuda()) {
    set_device(dd.index);
    cudaStream_t s = current_stream(dd.index);
    if (dd.index == sd.index) {
      NNKIT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s), "copy_");
    } else {
      // Order after the source device's queued work, then copy between devices.
      set_device(sd.index);
      NNKIT_CUDA_CHECK(cudaStreamSynchronize(current_stream(sd.index)), "copy_");
      set_device(dd.index);
      NNKIT_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dd.index, src, sd.index, bytes, s), "copy_");
      // The source's block may be reused on its device's stream as soon as we return.
      NNKIT_CUDA_CHECK(cudaStreamSynchronize(s), "copy_");
    }
  } else if (dd.is_cuda()) {
    set_device(dd.index);
    cudaStream_t s = current_stream(dd.index);
    NNKIT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s), "copy_");
    // The host buffer may be freed as soon as we return: wait (pageable memory is staged
    // anyway, so this costs little).
    NNKIT_CUDA_CHECK(cudaStreamSynchronize(s), "copy_");
  } else {
    set_device(sd.index);
    cudaStream_t s = current_stream(sd.index);
    NNKIT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s), "copy_");
    NNKIT_CUDA_CHECK(cudaStreamSynchronize(s), "copy_");
  }
}

template <typename D, typename S>
void convert(const Tensor& dst, const Tensor& src) {
  launch<D, S>("copy_", dst, {&src}, [] __device__(S v) { return static_cast<D>(v); });
}

bool dense_same(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.sizes() == b.sizes() && a.is_contiguous() && b.is_contiguous();
}

// Same-device copy with conversion and broadcasting.
void device_copy(const Tensor& dst, const Tensor& src) {
  if (dense_same(dst, src)) {
    memcpy_between(dst.raw_data(), dst.device(), src.raw_data(), src.device(), dst.nbytes());
    return;
  }
  detail::dispatch<detail::kAllTypes>(src.dtype(), "copy_", [&]<typename S>() {
    detail::dispatch<detail::kAllTypes>(dst.dtype(), "copy_", [&]<typename D>() { convert<D, S>(dst, src); });
  });
}

}  // namespace

void copy(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  if (dst.is_cuda() && src.is_cuda() && dst.device() == src.device()) {
    device_copy(dst, src);
    return;
  }
  if (dense_same(dst, src)) {
    memcpy_between(dst.raw_data(), dst.device(), src.raw_data(), src.device(), dst.nbytes());
    return;
  }
  // Move src, as it is (contiguous, own dtype and shape), to dst's device; then convert and
  // broadcast there.
  Tensor s = src.detach();
  if (s.is_cuda() && !s.is_contiguous()) {
    Tensor c = empty(s.sizes(), {.dtype = s.dtype(), .device = s.device()});
    device_copy(c, s);
    s = c;
  } else if (s.is_cpu()) {
    s = s.contiguous();
  }
  Tensor moved = empty(s.sizes(), {.dtype = s.dtype(), .device = dst.device()});
  memcpy_between(moved.raw_data(), moved.device(), s.raw_data(), s.device(), s.nbytes());
  if (dst.is_cuda())
    device_copy(dst, moved);
  else
    detail::copy_kernel(dst, moved);
}

namespace {

template <typename T>
void scalar_typed(const Tensor& out, const Tensor& a, ScalarOp op, double s) {
  T v = static_cast<T>(s);
  auto k = [&](auto f) { launch<T, T>("scalar", out, {&a}, f); };
  switch (op) {
    case ScalarOp::Add: k([v] __device__(T x) { return T(x + v); }); break;
    case ScalarOp::Mul: k([v] __device__(T x) { return T(x * v); }); break;
    case ScalarOp::Div: k([v] __device__(T x) { return T(x / v); }); break;
    case ScalarOp::RDiv: k([v] __device__(T x) { return T(v / x); }); break;
    case ScalarOp::Pow:
      if (s == 2) {
        k([] __device__(T x) { return T(x * x); });
      } else if constexpr (std::is_floating_point_v<T>) {
        if (s == 0.5) k([] __device__(T x) { return nnkit_dmath::sqrt(x); });
        else k([v] __device__(T x) { return pow_value(x, v); });
      } else {
        k([v] __device__(T x) { return pow_value(x, v); });
      }
      break;
  }
}

template <typename T>
void compare_typed(const Tensor& out, const Tensor& a, const Tensor& b, Cmp op) {
  auto k = [&](auto f) { launch<bool, T, T>("compare", out, {&a, &b}, f); };
  switch (op) {
    case Cmp::Eq: k([] __device__(T x, T y) { return x == y; }); break;
    case Cmp::Ne: k([] __device__(T x, T y) { return x != y; }); break;
    case Cmp::Lt: k([] __device__(T x, T y) { return x < y; }); break;
    case Cmp::Le: k([] __device__(T x, T y) { return x <= y; }); break;
    case Cmp::Gt: k([] __device__(T x, T y) { return x > y; }); break;
    case Cmp::Ge: k([] __device__(T x, T y) { return x >= y; }); break;
  }
}

template <typename T>
void where_typed(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  launch<T, bool, T, T>("where", out, {&cond, &a, &b}, [] __device__(bool c, T x, T y) { return c ? x : y; });
}

template <typename T>
void clamp_typed(const Tensor& out, const Tensor& x, bool has_lo, double lo, bool has_hi, double hi) {
  T l = has_lo ? static_cast<T>(lo) : std::numeric_limits<T>::lowest();
  T h = has_hi ? static_cast<T>(hi) : std::numeric_limits<T>::max();
  launch<T, T>("clamp", out, {&x}, [l, h] __device__(T v) {
    if (v != v) return v;
    T r = v < l ? l : v;  // min(max(v, lo), hi), as on the CPU (hi wins when lo > hi)
    return r > h ? h : r;
  });
}

template <typename T>
void fill_typed(const Tensor& out, double value) {
  T v = static_cast<T>(value);
  // out is read as the (ignored) operand so that its own strides drive the loop.
  launch<T, T>("fill_", out, {&out}, [v] __device__(T) { return v; });
}


}  // namespace

void binary(const Tensor& out, const Tensor& a, const Tensor& b, Bin op, double alpha) {
  detail::dispatch<detail::kNumericTypes>(out.dtype(), "binary", [&]<typename T>() { binary_typed<T>(out, a, b, op, alpha); });
}

void scalar(const Tensor& out, const Tensor& a, ScalarOp op, double s) {
  detail::dispatch<detail::kNumericTypes>(out.dtype(), "scalar", [&]<typename T>() { scalar_typed<T>(out, a, op, s); });
}

void unary(const Tensor& out, const Tensor& x, Un op) {
  detail::dispatch<detail::kNumericTypes>(out.dtype(), "unary", [&]<typename T>() { unary_typed<T>(out, x, op); });
}

void compare(const Tensor& out, const Tensor& a, const Tensor& b, Cmp op) {
  detail::dispatch<detail::kAllTypes>(a.dtype(), "compare", [&]<typename T>() { compare_typed<T>(out, a, b, op); });
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::dispatch<detail::kAllTypes>(out.dtype(), "where", [&]<typename T>() { where_typed<T>(out, cond, a, b); });
}

void fill(const Tensor& out, double value) {
  if (out.numel() == 0) return;
  if (value == 0 && out.is_contiguous()) {
    int dev = prepare(out);
    NNKIT_CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, out.nbytes(), current_stream(dev)), "fill_");
    return;
  }
  detail::dispatch<detail::kAllTypes>(out.dtype(), "fill_", [&]<typename T>() { fill_typed<T>(out, value); });
}

void clamp(const Tensor& out, const Tensor& x, bool has_lo, double lo, bool has_hi, double hi) {
  detail::dispatch<detail::kNumericTypes>(out.dtype(), "clamp",
                                          [&]<typename T>() { clamp_typed<T>(out, x, has_lo, lo, has_hi, hi); });
}

}  // namespace nnkit::cuda_detail
