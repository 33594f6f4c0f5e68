#pragma once
// The kernel contract: what a device's backend implements. The op front ends (src/ops) check
// arguments, promote dtypes, allocate outputs on the inputs' device and record gradients; the
// arithmetic is a call through this interface, on `backend(device)`, the one place where the
// device is chosen. The CPU backend (src/cpu/) and the CUDA backend (cuda/) implement it side by
// side, file for file (elementwise, reduce, nn_kernels, blas_dnn, random; backend.cpp holds
// each one's table). A build without CUDA links the CPU backend alone.
//
// Conventions for every kernel: all tensors are on the backend's device (the front ends check);
// outputs are allocated by the caller; inputs may be strided and, where the comment says so,
// broadcast to the output's shape. CUDA kernels run asynchronously on the device's current
// stream (errors surface at the next synchronizing call).
#include <cstdint>

#include "nnkit/core/tensor.h"
#include "ops/unary_ops.h"

namespace nnkit::detail {

enum class Bin { Add, Sub, Mul, Div, Pow, Max, Min };
enum class ScalarOp { Add, Mul, Div, Pow, RDiv };
enum class Cmp { Eq, Ne, Lt, Le, Gt, Ge };
enum class Reduce { Sum, Mean, Var, Std, Max, Min };

// Geometry of a 2-D convolution (NCHW input, KCRS weight).
struct ConvGeom {
  int64_t N, C, H, W;  // input
  int64_t K, kh, kw;   // output channels, kernel size
  int64_t sh, sw, ph, pw, dh, dw, groups;
  int64_t Ho, Wo;  // output spatial size
};
// Geometry of a 2-D pooling over [NC, H, W] planes.
struct PoolGeom {
  int64_t NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // ---- elementwise (elementwise.cpp / elementwise.cu) ----
  // dst = src converted to dst's dtype; src broadcastable to dst. The CUDA backend also copies
  // between the host and a device, and between devices.
  virtual void copy(const Tensor& dst, const Tensor& src) const = 0;
  // out = a (op) alpha*b for Add/Sub, a (op) b otherwise; a, b of out's dtype, broadcast to
  // out's shape. out may be a itself (in place).
  virtual void binary(const Tensor& out, const Tensor& a, const Tensor& b, Bin op, double alpha) const = 0;
  // out = a (op) s; a of out's dtype and shape (out may be a itself).
  virtual void scalar(const Tensor& out, const Tensor& a, ScalarOp op, double s) const = 0;
  // out = op(x) (a row of src/ops/unary_ops.h); x of out's dtype and shape (out may be x).
  virtual void unary(const Tensor& out, const Tensor& x, Un op) const = 0;
  // out (bool) = a (op) b; a and b of one dtype, broadcast to out's shape.
  virtual void compare(const Tensor& out, const Tensor& a, const Tensor& b, Cmp op) const = 0;
  // out = cond ? a : b; cond bool, a and b of out's dtype, all broadcast to out's shape.
  virtual void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) const = 0;
  // Every element of out (any layout) set to value.
  virtual void fill(const Tensor& out, double value) const = 0;
  // out = clamp(x, lo, hi) with NaN kept; a missing bound is has_lo/has_hi = false.
  virtual void clamp(const Tensor& out, const Tensor& x, bool has_lo, double lo, bool has_hi, double hi) const = 0;
  // dReLU: out = y > 0 ? g : 0; y, g of out's dtype and shape.
  virtual void relu_backward(const Tensor& out, const Tensor& y, const Tensor& g) const = 0;

  // ---- reductions and softmax (reduce.cpp / reduce.cu) ----
  // out = op over the sorted dims `dims` of x (any layout); out is contiguous with x's kept
  // dims in order. Sum: out int64 for bool/int64 x, else x's dtype (Mean, Var, Std: floating x
  // only). Floating point accumulates in double, integers in int64. Var/Std use `correction`.
  // Max/Min: NaN wins, as in PyTorch.
  virtual void reduce(const Tensor& out, const Tensor& x, const Shape& dims, Reduce op, double correction) const = 0;
  // Max or min over one dim d with the first index of it (NaN wins); values may be undefined.
  virtual void best(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t d, bool is_max) const = 0;
  // Softmax or log-softmax of contiguous x viewed as [outer, n, inner] along n, into out.
  virtual void softmax(const Tensor& out, const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log) const = 0;

  // ---- matrix products, convolution, batch norm (blas_dnn.cpp) ----
  // out[b] = a[b] @ b[b] for 2-D or 3-D a and b (any strides, batch dims broadcast as given:
  // same batch size or 1); out contiguous.
  virtual void gemm(const Tensor& out, const Tensor& a, const Tensor& b) const = 0;
  // x, w contiguous; bias may be undefined.
  virtual void conv2d_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                              const Tensor& out) const = 0;
  // Any of dx, dw, db may be undefined (not wanted).
  virtual void conv2d_backward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                               const Tensor& dw, const Tensor& db) const = 0;
  // Batch norm over contiguous x viewed as [N, C, S] with batch statistics: y, and the saved
  // per-channel mean and inverse std (the backend's choice of dtype: float64 on the CPU, x's
  // on CUDA), which only this backend's batch_norm_backward reads; with want_batch_stats,
  // batch_mean and batch_var get the batch mean and unbiased variance [C] (for the running
  // statistics; any floating dtype).
  virtual void batch_norm_train(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, const Tensor& y,
                                Tensor& save_mean, Tensor& save_invstd, bool want_batch_stats,
                                Tensor& batch_mean, Tensor& batch_var) const = 0;
  // y = x * scale[c] + shift[c] over contiguous x viewed as [N, C, S]; scale and shift float64
  // [C] (batch norm with running statistics, in evaluation).
  virtual void batch_norm_apply(const Tensor& x, const Tensor& scale, const Tensor& shift, const Tensor& y) const = 0;
  // The gradients of batch_norm_train (dweight, dbias undefined when not wanted or no affine).
  virtual void batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight, const Tensor& save_mean,
                                   const Tensor& save_invstd, double eps, const Tensor& dx, const Tensor& dweight,
                                   const Tensor& dbias) const = 0;

  // ---- pooling and indexing (nn_kernels.cpp / nn_kernels.cu) ----
  // Over contiguous [NC, H, W] planes (floating point): the window clipped to the input
  // (padding counts as -inf), first maximum wins, a NaN wins; indices (int64, flat within a
  // plane, -1 for an empty window) for the backward, which writes all of dx.
  virtual void max_pool2d_forward(const PoolGeom& g, const Tensor& x, const Tensor& out, const Tensor& indices) const = 0;
  virtual void max_pool2d_backward(const PoolGeom& g, const Tensor& dy, const Tensor& indices, const Tensor& dx) const = 0;
  // count_include_pad (PyTorch's default: the divisor is the window clipped to the padded
  // input). The backward writes every element of dx.
  virtual void avg_pool2d_forward(const PoolGeom& g, const Tensor& x, const Tensor& out) const = 0;
  virtual void avg_pool2d_backward(const PoolGeom& g, const Tensor& dy, const Tensor& dx) const = 0;
  // Index values are checked by the backend (negative values wrap: + size), with the message
  // "[op] index i is out of bounds for dimension d with size n".
  // Contiguous x viewed as [outer, n, inner]; out as [outer, index.numel(), inner].
  virtual void index_select(const Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t n,
                            int64_t inner, int64_t dim) const = 0;
  // out[:, index[i], :] += src[:, i, :]; out contiguous [outer, n, inner] holding the base.
  virtual void index_add(const Tensor& out, const Tensor& index, const Tensor& src, int64_t outer, int64_t n,
                         int64_t inner, int64_t dim) const = 0;
  // gather / scatter_add along dim d of contiguous tensors; index has the output's (source's)
  // shape. scatter_add adds into out, which holds the base values.
  virtual void gather(const Tensor& out, const Tensor& x, const Tensor& index, int64_t d) const = 0;
  virtual void scatter_add(const Tensor& out, const Tensor& index, const Tensor& src, int64_t d) const = 0;

  // ---- random fills (random.cpp / random.cu) ----
  // Contiguous floating t filled with the numbers of Philox counter blocks offset, offset + 1,
  // ... under `seed` (two elements per block): the same values on every device.
  virtual void fill_uniform(const Tensor& t, uint64_t seed, uint64_t offset) const = 0;
  virtual void fill_normal(const Tensor& t, uint64_t seed, uint64_t offset) const = 0;
};

// The backend of a device: the one place a device picks its kernels.
const Backend& backend(Device device);
inline const Backend& backend(const Tensor& t) { return backend(t.device()); }
// Copies between two devices go to the backend of the one that is not the CPU.
inline const Backend& copy_backend(const Tensor& dst, const Tensor& src) {
  return backend(dst.is_cpu() ? src.device() : dst.device());
}

// v, or v + size for a negative v, checked against [0, size): "[op] index v is out of bounds for
// dimension d with size n" (both backends' message).
int64_t checked_index(int64_t v, int64_t size, const char* op, int64_t d);

// A matrix operand (2-D, or 3-D batched) that a GEMM can read: one of its last two strides 1.
Tensor gemm_ready(const Tensor& m);

// Each backend's instance (src/cpu/backend.cpp, cuda/backend.cpp); in a build without CUDA,
// cuda_backend() throws (no CUDA tensor can exist there).
const Backend& cpu_backend();
const Backend& cuda_backend();

}  // namespace nnkit::detail
