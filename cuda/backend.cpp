// The CUDA backend's table: the kernel contract (src/backend/backend.h) on the kernels of
// elementwise.cu, reduce.cu, blas_dnn.cpp, nn_kernels.cu and random.cu (cuda_kernels.h). What
// the contract asks beyond a kernel's own form is done here: reductions over any dims become row
// reductions of a permuted copy, index values are range-checked before the kernels run (they
// only wrap negative values), batch statistics for the running averages are exact reductions.
#include "backend.h"

#include <vector>

#include "cuda_kernels.h"
#include "nnkit/autograd/grad_mode.h"
#include "nnkit/ops.h"

namespace nnkit::detail {

namespace {

// x with the dims `dims` moved last, as a contiguous [kept, reduced] matrix (the CUDA kernels
// reduce rows).
Tensor rows_of(const Tensor& x, const Shape& dims) {
  Tensor d = x.detach();
  if (x.dim() == 0) return d.reshape({1, 1});
  std::vector<bool> reduced(size_t(x.dim()), dims.empty());
  for (int64_t r : dims) reduced[size_t(r)] = true;
  Shape perm;
  int64_t kept = 1, red = 1;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (!reduced[size_t(i)]) {
      perm.push_back(i);
      kept *= x.size(i);
    }
  for (int64_t i = 0; i < x.dim(); ++i)
    if (reduced[size_t(i)]) {
      perm.push_back(i);
      red *= x.size(i);
    }
  return d.permute(perm).contiguous().reshape({kept, red});
}

// Every value of a device index in [-size, size): its min and max decide (two reductions and two
// small copies to the host, so this synchronizes).
void check_index_range(const Tensor& index, int64_t size, const char* op, int64_t d) {
  if (index.numel() == 0) return;
  checked_index(index.min().item<int64_t>(), size, op, d);
  checked_index(index.max().item<int64_t>(), size, op, d);
}

}  // namespace

const Backend& cuda_backend() {
  static const CudaBackend b;
  return b;
}

void CudaBackend::copy(const Tensor& dst, const Tensor& src) const { cuda_detail::copy(dst, src); }
void CudaBackend::binary(const Tensor& out, const Tensor& a, const Tensor& b, Bin op, double alpha) const {
  cuda_detail::binary(out, a, b, op, alpha);
}
void CudaBackend::scalar(const Tensor& out, const Tensor& a, ScalarOp op, double s) const {
  cuda_detail::scalar(out, a, op, s);
}
void CudaBackend::unary(const Tensor& out, const Tensor& x, Un op) const { cuda_detail::unary(out, x, op); }
void CudaBackend::compare(const Tensor& out, const Tensor& a, const Tensor& b, Cmp op) const {
  cuda_detail::compare(out, a, b, op);
}
void CudaBackend::where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) const {
  cuda_detail::where(out, cond, a, b);
}
void CudaBackend::fill(const Tensor& out, double value) const { cuda_detail::fill(out, value); }
void CudaBackend::clamp(const Tensor& out, const Tensor& x, bool has_lo, double lo, bool has_hi, double hi) const {
  cuda_detail::clamp(out, x, has_lo, lo, has_hi, hi);
}
void CudaBackend::relu_backward(const Tensor& out, const Tensor& y, const Tensor& g) const {
  Tensor positive = empty(y.sizes(), {.dtype = kBool, .device = y.device()});
  Tensor zero = zeros({}, {.dtype = g.dtype(), .device = g.device()});
  cuda_detail::compare(positive, y, zero, Cmp::Gt);
  cuda_detail::where(out, positive, g, zero);
}

void CudaBackend::reduce(const Tensor& out, const Tensor& x, const Shape& dims, Reduce op, double correction) const {
  cuda_detail::reduce_rows(out, rows_of(x, dims), op, correction);
}
void CudaBackend::best(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t d, bool is_max) const {
  cuda_detail::best_rows(values, indices, rows_of(x, x.dim() == 0 ? Shape() : Shape{d}), is_max);
}
void CudaBackend::softmax(const Tensor& out, const Tensor& x, int64_t outer, int64_t n, int64_t inner,
                          bool log) const {
  cuda_detail::softmax(out, x, outer, n, inner, log);
}

void CudaBackend::gemm(const Tensor& out, const Tensor& a, const Tensor& b) const {
  if (out.dim() == 3) {
    // One strided-batched cuBLAS call (any batch stride, 0 included).
    Tensor ab = a.size(0) == out.size(0) ? a : a.expand({out.size(0), a.size(1), a.size(2)});
    Tensor bb = b.size(0) == out.size(0) ? b : b.expand({out.size(0), b.size(1), b.size(2)});
    cuda_detail::gemm(out, gemm_ready(ab), gemm_ready(bb));
    return;
  }
  cuda_detail::gemm(out, gemm_ready(a), gemm_ready(b));
}
void CudaBackend::conv2d_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                                 const Tensor& out) const {
  cuda_detail::conv2d_forward(g, x, w, bias, out);
}
void CudaBackend::conv2d_backward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& dy,
                                  const Tensor& dx, const Tensor& dw, const Tensor& db) const {
  cuda_detail::conv2d_backward(g, x, w, dy, dx, dw, db);
}

void CudaBackend::batch_norm_train(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                                   const Tensor& y, Tensor& save_mean, Tensor& save_invstd, bool want_batch_stats,
                                   Tensor& batch_mean, Tensor& batch_var) const {
  const int64_t N = x.size(0), C = x.size(1), S = x.numel() / (N * C);
  const TensorOptions opts{.dtype = x.dtype(), .device = x.device()};
  save_mean = empty({C}, opts);
  save_invstd = empty({C}, opts);
  cuda_detail::batch_norm_train(x, weight, bias, eps, y, save_mean, save_invstd);
  if (want_batch_stats) {
    // Exact reductions (cuDNN documents its saved values for its backward only).
    NoGradGuard g;
    Tensor x3 = x.view({N, C, S});
    batch_mean = x3.mean({0, 2});
    batch_var = x3.var({0, 2}, 1);
  }
}
void CudaBackend::batch_norm_apply(const Tensor& x, const Tensor& scale, const Tensor& shift, const Tensor& y) const {
  const int64_t N = x.size(0), C = x.size(1), S = x.numel() / (N * C);
  NoGradGuard g;
  // x * scale + shift with the factors rounded to x's dtype, as the CPU kernel does.
  Tensor x3 = x.view({N, C, S});
  y.view({N, C, S}).copy_(x3.mul(scale.to(x.dtype()).view({1, C, 1})).add(shift.to(x.dtype()).view({1, C, 1})));
}
void CudaBackend::batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight, const Tensor& save_mean,
                                      const Tensor& save_invstd, double eps, const Tensor& dx, const Tensor& dweight,
                                      const Tensor& dbias) const {
  cuda_detail::batch_norm_backward(x, dy, weight, save_mean, save_invstd, eps, dx, dweight, dbias);
}

void CudaBackend::max_pool2d_forward(const PoolGeom& g, const Tensor& x, const Tensor& out,
                                     const Tensor& indices) const {
  cuda_detail::max_pool2d_forward(g, x, out, indices);
}
void CudaBackend::max_pool2d_backward(const PoolGeom& g, const Tensor& dy, const Tensor& indices,
                                      const Tensor& dx) const {
  cuda_detail::max_pool2d_backward(g, dy, indices, dx);
}
void CudaBackend::avg_pool2d_forward(const PoolGeom& g, const Tensor& x, const Tensor& out) const {
  cuda_detail::avg_pool2d_forward(g, x, out);
}
void CudaBackend::avg_pool2d_backward(const PoolGeom& g, const Tensor& dy, const Tensor& dx) const {
  cuda_detail::avg_pool2d_backward(g, dy, dx);
}
void CudaBackend::index_select(const Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t n,
                               int64_t inner, int64_t d) const {
  check_index_range(index, n, "index_select", d);
  cuda_detail::index_select(out, x, index, outer, n, inner);
}
void CudaBackend::index_add(const Tensor& out, const Tensor& index, const Tensor& src, int64_t outer, int64_t n,
                            int64_t inner, int64_t d) const {
  check_index_range(index, n, "index_add", d);
  cuda_detail::index_add(out, index, src, outer, n, inner);
}
void CudaBackend::gather(const Tensor& out, const Tensor& x, const Tensor& index, int64_t d) const {
  if (x.dim() > 0) check_index_range(index, x.size(d), "gather", d);
  cuda_detail::gather(out, x, index, d);
}
void CudaBackend::scatter_add(const Tensor& out, const Tensor& index, const Tensor& src, int64_t d) const {
  if (out.dim() > 0) check_index_range(index, out.size(d), "scatter_add", d);
  cuda_detail::scatter_add(out, index, src, d);
}

void CudaBackend::fill_uniform(const Tensor& t, uint64_t seed, uint64_t offset) const {
  cuda_detail::fill_uniform(t, seed, offset);
}
void CudaBackend::fill_normal(const Tensor& t, uint64_t seed, uint64_t offset) const {
  cuda_detail::fill_normal(t, seed, offset);
}

}  // namespace nnkit::detail
