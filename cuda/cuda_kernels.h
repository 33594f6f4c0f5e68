#pragma once
// Private to cuda/: the CUDA backend's kernels, in the form backend.cpp adapts to the kernel
// contract (src/backend/backend.h). Plain C++ (no CUDA types).
//
// Conventions for every cuda_detail function: all tensors are on the same CUDA device (the
// callers check); outputs are allocated by the caller; inputs may be strided and, where the
// comment says so, broadcast to the output's shape; the work runs on the device's current
// stream (asynchronously: errors of a kernel surface at the next synchronizing call).
#include <cstdint>

#include "nnkit/core/tensor.h"
#include "backend/backend.h"

namespace nnkit::cuda_detail {

using detail::Bin;
using detail::Cmp;
using detail::ScalarOp;
using detail::Un;

using detail::ConvGeom;
using detail::PoolGeom;

// ---- elementwise (cuda/elementwise.cu) ----
// dst = src converted to dst's dtype; src broadcastable to dst; either or both may be on the
// CPU (host <-> device copies), or on another CUDA device.
void copy(const Tensor& dst, const Tensor& src);
// out = a (op) b; a, b of out's dtype, broadcast to out's shape.
void binary(const Tensor& out, const Tensor& a, const Tensor& b, Bin op, double alpha);
// out = a (op) s; a of out's dtype and shape (out may be a itself: in place).
void scalar(const Tensor& out, const Tensor& a, ScalarOp op, double s);
// out = op(x); x of out's dtype and shape (out may be x itself).
void unary(const Tensor& out, const Tensor& x, Un op);
// out (bool) = a (op) b; a and b of one dtype, broadcast to out's shape.
void compare(const Tensor& out, const Tensor& a, const Tensor& b, Cmp op);
// out = cond ? a : b; cond bool, a and b of out's dtype, all broadcast to out's shape.
void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);
// Every element of out (any layout) set to value.
void fill(const Tensor& out, double value);
// out = clamp(x, lo, hi) with NaN kept; a missing bound is passed as has_lo/has_hi = false.
void clamp(const Tensor& out, const Tensor& x, bool has_lo, double lo, bool has_hi, double hi);

// ---- reductions and softmax (cuda/reduce.cu) ----
// out[r] = reduce(x[r, :]) for a contiguous [rows, n] x; out has `rows` elements (contiguous),
// dtype: x's for Max/Min/Var/Std/Mean, x's (int64 for bool/int64) for Sum. Accumulates in
// double for floating point, int64 for integers. Var/Std use `correction`.
void reduce_rows(const Tensor& out, const Tensor& x, detail::Reduce op, double correction);
// Max or min of each row with its first index (NaN wins, as in PyTorch); values may be undefined.
void best_rows(const Tensor& values, const Tensor& indices, const Tensor& x, bool is_max);
// Softmax or log-softmax of contiguous x viewed as [outer, n, inner] along n, into out.
void softmax(const Tensor& out, const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log);

// ---- cuBLAS and cuDNN (cuda/blas_dnn.cpp) ----
// out[b] = a[b] @ b[b] for 2-D (batch 1) or 3-D a and b whose last two dims have one unit
// stride each (any batch stride); out contiguous. float32/float64 (TF32 only when allowed).
void gemm(const Tensor& out, const Tensor& a, const Tensor& b);
// Convolution through cuDNN (algorithms found once per shape and cached); x, w contiguous.
void conv2d_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out);
// Any of dx, dw, db may be undefined (not wanted).
void conv2d_backward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                                   const Tensor& dw, const Tensor& db);
// Batch norm over [N, C, S] (S = spatial size, 1 for BatchNorm1d on 2-D input) through cuDNN.
// Training: y and the saved batch mean and inverse std (float32 for float32 x). weight/bias
// may be undefined (no affine). Running statistics are the caller's business.
void batch_norm_train(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, const Tensor& y,
                                    const Tensor& save_mean, const Tensor& save_invstd);
void batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight, const Tensor& save_mean,
                                       const Tensor& save_invstd, double eps, const Tensor& dx, const Tensor& dweight,
                                       const Tensor& dbias);

// ---- pooling and indexing (cuda/nn_kernels.cu) ----
// Over contiguous [NC, H, W] planes (float32/float64), with the CPU kernels' semantics: the
// window clipped to the input (padding counts as -inf), first maximum wins, a NaN wins;
// indices (int64, flat within a plane, -1 for an empty window) for the backward, which zeroes
// dx and scatter-adds dy into it (atomics: windows may overlap).
void max_pool2d_forward(const PoolGeom& g, const Tensor& x, const Tensor& out, const Tensor& indices);
void max_pool2d_backward(const PoolGeom& g, const Tensor& dy, const Tensor& indices, const Tensor& dx);
// count_include_pad as in PyTorch's default (divisor: the window clipped to the padded input).
// The backward writes every element of dx (each sums over the windows that contain it).
void avg_pool2d_forward(const PoolGeom& g, const Tensor& x, const Tensor& out);
void avg_pool2d_backward(const PoolGeom& g, const Tensor& dy, const Tensor& dx);
// Index values are NOT checked here: the caller checks them on the host first (from the index
// tensor's min and max, with the CPU path's message); the kernels wrap negative values (+ size).
// Contiguous x (any dtype) viewed as [outer, n, inner]; out as [outer, index.numel(), inner].
void index_select(const Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t n,
                                int64_t inner);
// out[:, index[i], :] += src[:, i, :] (atomics; int64, float32, float64); out contiguous
// [outer, n, inner], already holding the base values.
void index_add(const Tensor& out, const Tensor& index, const Tensor& src, int64_t outer, int64_t n,
                             int64_t inner);
// gather / scatter_add along dim d of contiguous tensors; index has the output's (source's)
// shape. gather: any dtype; scatter_add: atomics into out (holding the base values), int64,
// float32, float64.
void gather(const Tensor& out, const Tensor& x, const Tensor& index, int64_t dim);
void scatter_add(const Tensor& out, const Tensor& index, const Tensor& src, int64_t dim);

// ---- random fills (cuda/random.cu) ----
// Contiguous float32/float64 t filled with the numbers the CPU draws for counter blocks
// offset, offset + 1, ... under `seed` (two elements per block): rand and randn give the
// same values on every device.
void fill_uniform(const Tensor& t, uint64_t seed, uint64_t offset);
void fill_normal(const Tensor& t, uint64_t seed, uint64_t offset);


}  // namespace nnkit::cuda_detail
