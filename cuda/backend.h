#pragma once
// Private: the CUDA backend, the kernel contract of src/backend/backend.h on NVIDIA GPUs
// (our kernels, cuBLAS, cuDNN). backend.cpp adapts the contract to the kernels of
// elementwise.cu, reduce.cu, blas_dnn.cpp, nn_kernels.cu and random.cu (declared in
// cuda_kernels.h), which mirror src/cpu/ file for file.
#include "backend/backend.h"

namespace nnkit::detail {

class CudaBackend final : public Backend {
 public:
  void copy(const Tensor& dst, const Tensor& src) const override;
  void binary(const Tensor& out, const Tensor& a, const Tensor& b, Bin op, double alpha) const override;
  void scalar(const Tensor& out, const Tensor& a, ScalarOp op, double s) const override;
  void unary(const Tensor& out, const Tensor& x, Un op) const override;
  void compare(const Tensor& out, const Tensor& a, const Tensor& b, Cmp op) const override;
  void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) const override;
  void fill(const Tensor& out, double value) const override;
  void clamp(const Tensor& out, const Tensor& x, bool has_lo, double lo, bool has_hi, double hi) const override;
  void relu_backward(const Tensor& out, const Tensor& y, const Tensor& g) const override;
  void reduce(const Tensor& out, const Tensor& x, const Shape& dims, Reduce op, double correction) const override;
  void best(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t d, bool is_max) const override;
  void softmax(const Tensor& out, const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log) const override;
  void gemm(const Tensor& out, const Tensor& a, const Tensor& b) const override;
  void conv2d_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) const override;
  void conv2d_backward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx, const Tensor& dw, const Tensor& db) const override;
  void batch_norm_train(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, const Tensor& y, Tensor& save_mean, Tensor& save_invstd, bool want_batch_stats, Tensor& batch_mean, Tensor& batch_var) const override;
  void batch_norm_apply(const Tensor& x, const Tensor& scale, const Tensor& shift, const Tensor& y) const override;
  void batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight, const Tensor& save_mean, const Tensor& save_invstd, double eps, const Tensor& dx, const Tensor& dweight, const Tensor& dbias) const override;
  void max_pool2d_forward(const PoolGeom& g, const Tensor& x, const Tensor& out, const Tensor& indices) const override;
  void max_pool2d_backward(const PoolGeom& g, const Tensor& dy, const Tensor& indices, const Tensor& dx) const override;
  void avg_pool2d_forward(const PoolGeom& g, const Tensor& x, const Tensor& out) const override;
  void avg_pool2d_backward(const PoolGeom& g, const Tensor& dy, const Tensor& dx) const override;
  void index_select(const Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t n, int64_t inner, int64_t dim) const override;
  void index_add(const Tensor& out, const Tensor& index, const Tensor& src, int64_t outer, int64_t n, int64_t inner, int64_t dim) const override;
  void gather(const Tensor& out, const Tensor& x, const Tensor& index, int64_t d) const override;
  void scatter_add(const Tensor& out, const Tensor& index, const Tensor& src, int64_t d) const override;
  void fill_uniform(const Tensor& t, uint64_t seed, uint64_t offset) const override;
  void fill_normal(const Tensor& t, uint64_t seed, uint64_t offset) const override;
};

}  // namespace nnkit::detail
