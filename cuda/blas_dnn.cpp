// cuBLAS and cuDNN calls of the CUDA backend: matrix products (gemm), 2-D convolution with
// algorithms found once per shape, and batch normalization in training mode.
//
// Sources relied on (cited where used below):
//  - cuBLAS documentation: cublasGemmStridedBatchedEx / cublas<t>gemmStridedBatched (column-major
//    operands, leading-dimension rules lda >= max(1, rows of the stored matrix)), the _64
//    variants (64-bit sizes, cuBLAS 12+), cublasComputeType_t (CUBLAS_COMPUTE_32F keeps full
//    float32 products; CUBLAS_COMPUTE_32F_FAST_TF32 allows rounding the inputs to TF32).
//  - cuDNN API reference: the legacy convolution API (cudnnFindConvolution*AlgorithmEx,
//    cudnnConvolutionForward/BackwardData/BackwardFilter/BackwardBias, cudnnAddTensor,
//    cudnnSetTensor), cudnnMathType_t (on Ampere and later CUDNN_DEFAULT_MATH permits TF32 for
//    float32; CUDNN_FMA_MATH restricts to FMA kernels), and the batch-normalization API
//    (cudnnBatchNormalizationForwardTraining / Backward; running mean and variance pointers may
//    both be NULL; scale/bias/mean/variance descriptors from cudnnDeriveBNTensorDescriptor; alpha
//    and beta are host floats for float data and host doubles for double data).
//  - PyTorch's aten/src/ATen/native/cudnn/Conv_v7.cpp (math type per dtype and allow_tf32, the
//    search with cudnnFind*Ex on real buffers, a benchmark cache keyed by the geometry, setting
//    the convolution descriptor's math type to the chosen result's before running) and
//    aten/src/ATen/native/cudnn/BatchNorm.cpp (running statistics passed as maybe-null pointers).
#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "nnkit/core/device.h"
#include "cuda_kernels.h"
#include "runtime.h"

namespace nnkit::cuda_detail {

namespace {

// ---------------------------------------------------------------------------------------------
// gemm
// ---------------------------------------------------------------------------------------------

// How a row-major [R, C] matrix X with strides (rs, cs) is passed to cuBLAS as the column-major
// operand op(stored) == X^T (a C x R matrix).
struct BlasOperand {
  cublasOperation_t op;
  int64_t ld;
};

// False when the strides give no layout that cuBLAS accepts (then the caller makes X contiguous).
//  - cs == 1 (row-major): the memory read column-major with ld = rs is the C x R matrix X^T:
//    op N, requires ld >= max(1, C).
//  - rs == 1 (column-major): the memory read column-major with ld = cs is the R x C matrix X:
//    op T, requires ld >= max(1, R).
// A dimension of size 1 leaves its stride unused, so it does not decide the layout.
bool blas_operand(int64_t R, int64_t C, int64_t rs, int64_t cs, BlasOperand& o) {
  if (R <= 1 && C <= 1) {
    o = {CUBLAS_OP_N, 1};
    return true;
  }
  if (C <= 1) {  // a column vector: row-major with row stride rs
    o = {CUBLAS_OP_N, rs};
    return rs >= 1;
  }
  if (R <= 1) {  // a row vector
    if (cs == 1) {
      o = {CUBLAS_OP_N, C};
      return true;
    }
    o = {CUBLAS_OP_T, cs};
    return cs >= 1;
  }
  if (cs == 1 && rs >= C) {
    o = {CUBLAS_OP_N, rs};
    return true;
  }
  if (rs == 1 && cs >= R) {
    o = {CUBLAS_OP_T, cs};
    return true;
  }
  return false;
}

// The operand for the last two dims of t (2-D or 3-D), made contiguous when its strides do not
// fit cuBLAS (e.g. a stride-0 row broadcast). Also returns the batch stride (0 for 2-D).
Tensor blas_ready(const Tensor& t, BlasOperand& o, int64_t& batch_stride) {
  Tensor m = t;
  if (!blas_operand(m.size(-2), m.size(-1), m.stride(-2), m.stride(-1), o)) {
    m = m.contiguous();
    const bool ok = blas_operand(m.size(-2), m.size(-1), m.stride(-2), m.stride(-1), o);
    NNKIT_CHECK(ok, "[matmul] internal error: no cuBLAS layout for a contiguous operand of shape ", m.sizes());
  }
  batch_stride = (m.dim() == 3 && m.size(0) > 1) ? m.stride(0) : 0;
  return m;
}

}  // namespace

void gemm(const Tensor& out, const Tensor& a, const Tensor& b) {
  const char* op = out.dim() == 3 ? "bmm" : "mm";
  NNKIT_CHECK(a.dtype() == Dtype::Float32 || a.dtype() == Dtype::Float64, "[", op, "] not implemented on CUDA for ",
              a.dtype(), " tensors (only float32 and float64)");
  NNKIT_CHECK(a.dtype() == b.dtype() && a.dtype() == out.dtype(), "[", op, "] dtypes differ: ", a.dtype(), ", ",
              b.dtype(), " -> ", out.dtype());
  NNKIT_CHECK(out.is_contiguous(), "[", op, "] internal error: the output must be contiguous");
  const int64_t batch = out.dim() == 3 ? out.size(0) : 1;
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  if (batch == 0 || M == 0 || N == 0) return;
  const int dev = prepare(out);
  cudaStream_t stream = current_stream(dev);
  if (K == 0) {  // an empty sum: zeros (all-zero bits are 0.0 in IEEE float and double)
    NNKIT_CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, out.nbytes(), stream), op);
    return;
  }
  // Row-major out = a @ b is column-major out^T = b^T @ a^T: cuBLAS's "A" is b^T (N x K), its
  // "B" is a^T (K x M), and out read column-major with ldc = N is out^T (N x M).
  BlasOperand ob{}, oa{};
  int64_t sb = 0, sa = 0;
  Tensor B = blas_ready(b, ob, sb), A = blas_ready(a, oa, sa);
  const int64_t stride_c = M * N;
  cublasHandle_t h = cublas_handle(dev);
  if (out.dtype() == Dtype::Float32) {
    const float alpha = 1.0f, beta = 0.0f;
    // TF32 only when the user allowed it (torch.backends.cuda.matmul.allow_tf32 semantics).
    const cublasComputeType_t compute = cuda::allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    NNKIT_CUBLAS_CHECK(cublasGemmStridedBatchedEx_64(h, ob.op, oa.op, N, M, K, &alpha, B.raw_data(), CUDA_R_32F, ob.ld,
                                                     sb, A.raw_data(), CUDA_R_32F, oa.ld, sa, &beta, out.raw_data(),
                                                     CUDA_R_32F, N, stride_c, batch, compute, CUBLAS_GEMM_DEFAULT),
                       op);
  } else {
    const double alpha = 1.0, beta = 0.0;
    NNKIT_CUBLAS_CHECK(cublasDgemmStridedBatched_64(h, ob.op, oa.op, N, M, K, &alpha, B.data_ptr<double>(), ob.ld, sb,
                                                    A.data_ptr<double>(), oa.ld, sa, &beta, out.data_ptr<double>(), N,
                                                    stride_c, batch),
                       op);
  }
}

namespace {

// ---------------------------------------------------------------------------------------------
// cuDNN helpers
// ---------------------------------------------------------------------------------------------

// Owns a cuDNN descriptor; destruction ignores errors (it runs during unwinding too).
template <typename T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class Descriptor {
 public:
  explicit Descriptor(const char* op) { NNKIT_CUDNN_CHECK(Create(&d_), op); }
  ~Descriptor() {
    if (d_) (void)Destroy(d_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  T get() const { return d_; }

 private:
  T d_ = nullptr;
};
using TensorDesc = Descriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDesc = Descriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvDesc =
    Descriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor>;

cudnnDataType_t cudnn_dtype(Dtype d, const char* op) {
  if (d == Dtype::Float32) return CUDNN_DATA_FLOAT;
  NNKIT_CHECK(d == Dtype::Float64, "[", op, "] not implemented on CUDA for ", d, " tensors (only float32 and float64)");
  return CUDNN_DATA_DOUBLE;
}

// The blend factors alpha = 1, beta = 0: host floats for float data, host doubles for double
// data (cuDNN API reference, "Scaling Parameters").
struct Blend {
  float f_one = 1.0f, f_zero = 0.0f;
  double d_one = 1.0, d_zero = 0.0;
  bool is_double;
  explicit Blend(Dtype d) : is_double(d == Dtype::Float64) {}
  const void* one() const { return is_double ? static_cast<const void*>(&d_one) : static_cast<const void*>(&f_one); }
  const void* zero() const {
    return is_double ? static_cast<const void*>(&d_zero) : static_cast<const void*>(&f_zero);
  }
};

// cuDNN's legacy API takes int sizes and indexes tensors with 32 bits (PyTorch splits the batch
// of larger convolutions; nnkit reports them).
int to_int(int64_t v, const char* op, const char* what) {
  NNKIT_CHECK(v >= 0 && v <= INT_MAX, "[", op, "] ", what, " (", v, ") exceeds cuDNN's 32-bit limit");
  return static_cast<int>(v);
}
void check_numel(const Tensor& t, const char* op, const char* what) {
  NNKIT_CHECK(t.numel() <= INT_MAX, "[", op, "] the ", what, " of shape ", t.sizes(),
              " has more than 2^31 - 1 elements, which cuDNN's convolution and batch-norm kernels do not support");
}

void zero_fill(const Tensor& t, cudaStream_t stream, const char* op) {
  if (t.defined() && t.numel() > 0) NNKIT_CUDA_CHECK(cudaMemsetAsync(t.raw_data(), 0, t.nbytes(), stream), op);
}

void set_4d(const TensorDesc& d, cudnnDataType_t dt, int64_t n, int64_t c, int64_t h, int64_t w, const char* op) {
  NNKIT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d.get(), CUDNN_TENSOR_NCHW, dt, to_int(n, op, "a size"),
                                               to_int(c, op, "a size"), to_int(h, op, "a size"),
                                               to_int(w, op, "a size")),
                    op);
}

// ---------------------------------------------------------------------------------------------
// convolution
// ---------------------------------------------------------------------------------------------

// Descriptors of one convolution: x [N, C, H, W], w [K, C/groups, kh, kw], y [N, K, Ho, Wo].
struct ConvDescs {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  cudnnDataType_t dtype;
  // float32 without TF32: only FMA kernels (like PyTorch with allow_tf32 = False).
  bool fma_only;

  ConvDescs(const ConvGeom& g, Dtype d, const char* op) : x(op), y(op), w(op), conv(op) {
    dtype = cudnn_dtype(d, op);
    fma_only = dtype == CUDNN_DATA_FLOAT && !cuda::allow_tf32();
    set_4d(x, dtype, g.N, g.C, g.H, g.W, op);
    set_4d(y, dtype, g.N, g.K, g.Ho, g.Wo, op);
    NNKIT_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w.get(), dtype, CUDNN_TENSOR_NCHW, to_int(g.K, op, "a size"),
                                                 to_int(g.C / g.groups, op, "a size"), to_int(g.kh, op, "a size"),
                                                 to_int(g.kw, op, "a size")),
                      op);
    // computeType = the data type: float accumulation for float, double for double.
    NNKIT_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv.get(), to_int(g.ph, op, "padding"),
                                                      to_int(g.pw, op, "padding"), to_int(g.sh, op, "stride"),
                                                      to_int(g.sw, op, "stride"), to_int(g.dh, op, "dilation"),
                                                      to_int(g.dw, op, "dilation"), CUDNN_CROSS_CORRELATION, dtype),
                      op);
    NNKIT_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv.get(), to_int(g.groups, op, "groups")), op);
    // CUDNN_FMA_MATH keeps float32 exact to float32 rounding; CUDNN_DEFAULT_MATH (what PyTorch
    // sets for float with allow_tf32 and for double) lets cudnnFind consider every kernel,
    // tensor-core ones (TF32 for float on Ampere+, FP64 DMMA for double) included.
    NNKIT_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.get(), fma_only ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH), op);
    int n = 0, k = 0, ho = 0, wo = 0;
    NNKIT_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv.get(), x.get(), w.get(), &n, &k, &ho, &wo), op);
    NNKIT_CHECK(n == g.N && k == g.K && ho == g.Ho && wo == g.Wo, "[", op,
                "] internal error: cuDNN computes the output shape [", n, ", ", k, ", ", ho, ", ", wo,
                "], nnkit [", g.N, ", ", g.K, ", ", g.Ho, ", ", g.Wo, "]");
  }
};

enum class ConvDir : int64_t { Forward = 0, BackwardData = 1, BackwardFilter = 2 };

// The algorithm chosen for one convolution shape and direction (like cudnn.benchmark: searched
// once with cudnnFind*Ex, then reused).
struct AlgoChoice {
  int algo;
  cudnnMathType_t math;
  size_t workspace;
};

using AlgoKey = std::array<int64_t, 20>;

AlgoKey algo_key(const ConvGeom& g, Dtype d, ConvDir dir, bool fma_only, int device) {
  return {g.N,  g.C,  g.H,  g.W,      g.K,         g.kh,  g.kw,     g.sh,
          g.sw, g.ph, g.pw, g.dh,     g.dw,        g.groups, g.Ho, g.Wo,
          int64_t(d), int64_t(dir), int64_t(fma_only), int64_t(device)};
}

struct AlgoCache {
  std::mutex mutex;
  std::map<AlgoKey, AlgoChoice> map;
};
AlgoCache& algo_cache() {
  static AlgoCache* c = new AlgoCache();  // never destroyed (used until process exit)
  return *c;
}

std::optional<AlgoChoice> cached_algo(const AlgoKey& key) {
  AlgoCache& c = algo_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.map.find(key);
  if (it == c.map.end()) return std::nullopt;
  return it->second;
}
void store_algo(const AlgoKey& key, const AlgoChoice& choice) {
  AlgoCache& c = algo_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.map[key] = choice;
}

// The fastest successful result; with fma_only, only results whose math type is FMA (a result
// reporting a tensor-op or default math type may use TF32 on Hopper).
template <typename Perf>
AlgoChoice pick_algo(const std::vector<Perf>& perfs, int count, bool fma_only, const char* op, const char* what) {
  const Perf* best = nullptr;
  for (int i = 0; i < count; ++i) {
    const Perf& p = perfs[size_t(i)];
    if (p.status != CUDNN_STATUS_SUCCESS) continue;
    if (fma_only && p.mathType != CUDNN_FMA_MATH) continue;
    if (!best || p.time < best->time) best = &p;
  }
  NNKIT_CHECK(best != nullptr, "[", op, "] cuDNN found no usable ", what, " algorithm for this convolution (",
              count, " candidates", fma_only ? ", FMA math only since TF32 is not allowed" : "", ")");
  return {int(best->algo), best->mathType, best->memory};
}

// The workspace offered to cudnnFind*Ex: the largest any algorithm asks for, at most half the
// device's free memory; if even that cannot be allocated, none (algorithms needing one are then
// reported as failed and skipped).
template <typename Algo, typename SizeFn>
void find_workspace(int algo_count, SizeFn size_of, int dev, std::optional<Buffer>& ws, size_t& bytes) {
  size_t largest = 0;
  for (int a = 0; a < algo_count; ++a) {
    size_t s = 0;
    if (size_of(static_cast<Algo>(a), &s) == CUDNN_STATUS_SUCCESS && s > largest) largest = s;
  }
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    (void)cudaGetLastError();
    free_b = 0;
  }
  bytes = std::min(largest, free_b / 2);
  if (bytes > 0) {
    try {
      ws.emplace(bytes, dev);
    } catch (const Error&) {
      bytes = 0;
      ws.reset();
    }
  }
}

AlgoChoice forward_algo(const ConvGeom& g, Dtype d, const ConvDescs& cd, cudnnHandle_t h, int dev, const void* x,
                        const void* w, void* y, const char* op) {
  const AlgoKey key = algo_key(g, d, ConvDir::Forward, cd.fma_only, dev);
  if (auto c = cached_algo(key)) return *c;
  size_t ws_bytes = 0;
  std::optional<Buffer> ws;
  find_workspace<cudnnConvolutionFwdAlgo_t>(
      CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
      [&](cudnnConvolutionFwdAlgo_t a, size_t* s) {
        return cudnnGetConvolutionForwardWorkspaceSize(h, cd.x.get(), cd.w.get(), cd.conv.get(), cd.y.get(), a, s);
      },
      dev, ws, ws_bytes);
  int max_count = 0;
  NNKIT_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max_count), op);
  std::vector<cudnnConvolutionFwdAlgoPerf_t> perfs(size_t(std::max(max_count, 1)));
  int count = 0;
  // Runs every algorithm on the real buffers (y is overwritten; the caller writes it next).
  NNKIT_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, cd.x.get(), x, cd.w.get(), w, cd.conv.get(), cd.y.get(),
                                                           y, int(perfs.size()), &count, perfs.data(),
                                                           ws ? ws->get() : nullptr, ws_bytes),
                    op);
  const AlgoChoice c = pick_algo(perfs, count, cd.fma_only, op, "forward");
  store_algo(key, c);
  return c;
}

AlgoChoice backward_data_algo(const ConvGeom& g, Dtype d, const ConvDescs& cd, cudnnHandle_t h, int dev,
                              const void* w, const void* dy, void* dx, const char* op) {
  const AlgoKey key = algo_key(g, d, ConvDir::BackwardData, cd.fma_only, dev);
  if (auto c = cached_algo(key)) return *c;
  size_t ws_bytes = 0;
  std::optional<Buffer> ws;
  find_workspace<cudnnConvolutionBwdDataAlgo_t>(
      CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
      [&](cudnnConvolutionBwdDataAlgo_t a, size_t* s) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(h, cd.w.get(), cd.y.get(), cd.conv.get(), cd.x.get(), a,
                                                            s);
      },
      dev, ws, ws_bytes);
  int max_count = 0;
  NNKIT_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max_count), op);
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perfs(size_t(std::max(max_count, 1)));
  int count = 0;
  NNKIT_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, cd.w.get(), w, cd.y.get(), dy, cd.conv.get(),
                                                                cd.x.get(), dx, int(perfs.size()), &count,
                                                                perfs.data(), ws ? ws->get() : nullptr, ws_bytes),
                    op);
  const AlgoChoice c = pick_algo(perfs, count, cd.fma_only, op, "backward-data");
  store_algo(key, c);
  return c;
}

AlgoChoice backward_filter_algo(const ConvGeom& g, Dtype d, const ConvDescs& cd, cudnnHandle_t h, int dev,
                                const void* x, const void* dy, void* dw, const char* op) {
  const AlgoKey key = algo_key(g, d, ConvDir::BackwardFilter, cd.fma_only, dev);
  if (auto c = cached_algo(key)) return *c;
  size_t ws_bytes = 0;
  std::optional<Buffer> ws;
  find_workspace<cudnnConvolutionBwdFilterAlgo_t>(
      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
      [&](cudnnConvolutionBwdFilterAlgo_t a, size_t* s) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, cd.x.get(), cd.y.get(), cd.conv.get(), cd.w.get(), a,
                                                              s);
      },
      dev, ws, ws_bytes);
  int max_count = 0;
  NNKIT_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max_count), op);
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perfs(size_t(std::max(max_count, 1)));
  int count = 0;
  NNKIT_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, cd.x.get(), x, cd.y.get(), dy, cd.conv.get(),
                                                                  cd.w.get(), dw, int(perfs.size()), &count,
                                                                  perfs.data(), ws ? ws->get() : nullptr, ws_bytes),
                    op);
  const AlgoChoice c = pick_algo(perfs, count, cd.fma_only, op, "backward-filter");
  store_algo(key, c);
  return c;
}

void check_conv_tensor(const Tensor& t, const char* op, const char* what) {
  NNKIT_CHECK(t.is_contiguous(), "[", op, "] internal error: the ", what, " must be contiguous");
  check_numel(t, op, what);
}

}  // namespace


void conv2d_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) {
  const char* op = "conv2d";
  if (out.numel() == 0) return;
  const Dtype d = out.dtype();
  const cudnnDataType_t dt = cudnn_dtype(d, op);
  check_conv_tensor(out, op, "output");
  const int dev = prepare(out);
  cudaStream_t stream = current_stream(dev);
  cudnnHandle_t h = cudnn_handle(dev);
  const Blend blend(d);
  if (x.numel() == 0 || w.numel() == 0) {
    // No input channels (or an empty kernel): every output is an empty sum, 0 (+ bias below).
    zero_fill(out, stream, op);
  } else {
    check_conv_tensor(x, op, "input");
    check_conv_tensor(w, op, "weight");
    ConvDescs cd(g, d, op);
    const AlgoChoice c = forward_algo(g, d, cd, h, dev, x.raw_data(), w.raw_data(), out.raw_data(), op);
    // cuDNN selects kernels by algorithm and math type together: run with the math type the
    // search reported for this algorithm (PyTorch's Note [behavior of cudnnFind and cudnnGet]).
    NNKIT_CUDNN_CHECK(cudnnSetConvolutionMathType(cd.conv.get(), c.math), op);
    Buffer ws(c.workspace, dev);
    NNKIT_CUDNN_CHECK(cudnnConvolutionForward(h, blend.one(), cd.x.get(), x.raw_data(), cd.w.get(), w.raw_data(),
                                              cd.conv.get(), static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), ws.get(),
                                              c.workspace, blend.zero(), cd.y.get(), out.raw_data()),
                      op);
  }
  if (bias.defined()) {
    NNKIT_CHECK(bias.is_contiguous() && bias.dtype() == d && bias.numel() == g.K, "[", op,
                "] internal error: the bias must be a contiguous [", g.K, "] tensor of dtype ", d);
    // out = 1 * bias + 1 * out; cudnnAddTensor broadcasts the dims of size 1 of its first operand.
    TensorDesc bdesc(op), ydesc(op);
    set_4d(bdesc, dt, 1, g.K, 1, 1, op);
    set_4d(ydesc, dt, g.N, g.K, g.Ho, g.Wo, op);
    NNKIT_CUDNN_CHECK(cudnnAddTensor(h, blend.one(), bdesc.get(), bias.raw_data(), blend.one(), ydesc.get(),
                                     out.raw_data()),
                      op);
  }
}

void conv2d_backward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                     const Tensor& dw, const Tensor& db) {
  const char* op = "conv2d_backward";
  NNKIT_CHECK(dy.dtype() == x.dtype() && w.dtype() == x.dtype(), "[conv2d_backward] gradient dtype ", dy.dtype(),
              " does not match the input's ", x.dtype());
  const Dtype d = dy.dtype();
  const cudnnDataType_t dt = cudnn_dtype(d, op);
  const int dev = prepare(dy);
  cudaStream_t stream = current_stream(dev);
  cudnnHandle_t h = cudnn_handle(dev);
  const Blend blend(d);
  for (const Tensor* t : {&dx, &dw, &db})
    if (t->defined()) check_conv_tensor(*t, op, "gradient");
  // Bias gradient: the sum of dy over N, Ho, Wo (0 when dy is empty).
  if (db.defined() && db.numel() > 0) {
    if (dy.numel() == 0) {
      zero_fill(db, stream, op);
    } else {
      check_conv_tensor(dy, op, "output gradient");
      TensorDesc dydesc(op), dbdesc(op);
      set_4d(dydesc, dt, g.N, g.K, g.Ho, g.Wo, op);
      set_4d(dbdesc, dt, 1, g.K, 1, 1, op);
      NNKIT_CUDNN_CHECK(cudnnConvolutionBackwardBias(h, blend.one(), dydesc.get(), dy.raw_data(), blend.zero(),
                                                     dbdesc.get(), db.raw_data()),
                        op);
    }
  }
  const bool want_dx = dx.defined() && dx.numel() > 0, want_dw = dw.defined() && dw.numel() > 0;
  if (!want_dx && !want_dw) return;
  if (x.numel() == 0 || w.numel() == 0 || dy.numel() == 0) {
    // An empty sum on either side: the gradients that exist are zeros.
    if (want_dx) zero_fill(dx, stream, op);
    if (want_dw) zero_fill(dw, stream, op);
    return;
  }
  check_conv_tensor(x, op, "input");
  check_conv_tensor(w, op, "weight");
  check_conv_tensor(dy, op, "output gradient");
  ConvDescs cd(g, d, op);
  if (want_dx) {
    const AlgoChoice c = backward_data_algo(g, d, cd, h, dev, w.raw_data(), dy.raw_data(), dx.raw_data(), op);
    NNKIT_CUDNN_CHECK(cudnnSetConvolutionMathType(cd.conv.get(), c.math), op);
    Buffer ws(c.workspace, dev);
    NNKIT_CUDNN_CHECK(cudnnConvolutionBackwardData(h, blend.one(), cd.w.get(), w.raw_data(), cd.y.get(), dy.raw_data(),
                                                   cd.conv.get(), static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo),
                                                   ws.get(), c.workspace, blend.zero(), cd.x.get(), dx.raw_data()),
                      op);
  }
  if (want_dw) {
    // Back to the requested math type for the search (the data pass may have changed it).
    NNKIT_CUDNN_CHECK(cudnnSetConvolutionMathType(cd.conv.get(), cd.fma_only ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH),
                      op);
    const AlgoChoice c = backward_filter_algo(g, d, cd, h, dev, x.raw_data(), dy.raw_data(), dw.raw_data(), op);
    NNKIT_CUDNN_CHECK(cudnnSetConvolutionMathType(cd.conv.get(), c.math), op);
    Buffer ws(c.workspace, dev);
    NNKIT_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, blend.one(), cd.x.get(), x.raw_data(), cd.y.get(),
                                                     dy.raw_data(), cd.conv.get(),
                                                     static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo), ws.get(),
                                                     c.workspace, blend.zero(), cd.w.get(), dw.raw_data()),
                      op);
  }
}

// ---------------------------------------------------------------------------------------------
// batch normalization
// ---------------------------------------------------------------------------------------------

namespace {

// x [N, C, S] viewed as the NCHW tensor [N, C, S, 1] for CUDNN_BATCHNORM_SPATIAL (statistics per
// channel over N, H, W), and the per-channel descriptor derived from it (1 x C x 1 x 1, float
// for float x, double for double x: cudnnDeriveBNTensorDescriptor).
struct BnDescs {
  TensorDesc x, param;
  int64_t C;
  BnDescs(const Tensor& t, const char* op) : x(op), param(op) {
    const int64_t N = t.size(0);
    C = t.size(1);
    const int64_t S = t.numel() / (N * C);
    set_4d(x, cudnn_dtype(t.dtype(), op), N, C, S, 1, op);
    NNKIT_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(param.get(), x.get(), CUDNN_BATCHNORM_SPATIAL), op);
  }
};

void check_bn_tensor(const Tensor& t, const Tensor& x, const char* op, const char* what) {
  NNKIT_CHECK(t.is_contiguous() && t.dtype() == x.dtype() && t.device() == x.device(), "[", op,
              "] internal error: the ", what, " must be a contiguous ", x.dtype(), " tensor on ", x.device());
}
void check_bn_param(const Tensor& t, const Tensor& x, const char* op, const char* what) {
  check_bn_tensor(t, x, op, what);
  NNKIT_CHECK(t.numel() == x.size(1), "[", op, "] internal error: the ", what, " must have ", x.size(1),
              " elements, got ", t.numel());
}

// Pointer to a per-channel tensor's data, or to `tmp` filled with `value` (cudnnSetTensor sets
// every element to the host value, which has the descriptor's data type) when it is undefined.
const void* param_or(const Tensor& t, const Buffer& tmp, cudnnHandle_t h, const BnDescs& bd, const void* value,
                     const char* op) {
  if (t.defined()) return t.raw_data();
  NNKIT_CUDNN_CHECK(cudnnSetTensor(h, bd.param.get(), tmp.get(), value), op);
  return tmp.get();
}

}  // namespace

void batch_norm_train(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, const Tensor& y,
                      const Tensor& save_mean, const Tensor& save_invstd) {
  const char* op = "batch_norm";
  // "Has to be >= CUDNN_BN_MIN_EPSILON" (cudnn_ops.h, cudnnBatchNormalizationForwardTraining).
  NNKIT_CHECK(eps >= CUDNN_BN_MIN_EPSILON, "[", op, "] eps must be at least ", CUDNN_BN_MIN_EPSILON,
              " on CUDA (cuDNN's minimum), got ", eps);
  (void)cudnn_dtype(x.dtype(), op);
  NNKIT_CHECK(x.dim() >= 2, "[", op, "] internal error: expected [N, C, ...], got ", x.sizes());
  if (x.numel() == 0) return;
  check_bn_tensor(x, x, op, "input");
  check_bn_tensor(y, x, op, "output");
  check_numel(x, op, "input");
  if (weight.defined()) check_bn_param(weight, x, op, "weight");
  if (bias.defined()) check_bn_param(bias, x, op, "bias");
  check_bn_param(save_mean, x, op, "saved mean");
  check_bn_param(save_invstd, x, op, "saved inverse std");
  const int dev = prepare(x);
  cudnnHandle_t h = cudnn_handle(dev);
  const Blend blend(x.dtype());
  BnDescs bd(x, op);
  const size_t pbytes = size_t(bd.C) * x.element_size();
  Buffer tmp_w(weight.defined() ? 0 : pbytes, dev), tmp_b(bias.defined() ? 0 : pbytes, dev);
  const void* w = param_or(weight, tmp_w, h, bd, blend.one(), op);
  const void* b = param_or(bias, tmp_b, h, bd, blend.zero(), op);
  // resultRunningMean / resultRunningVariance: both NULL (allowed together, as PyTorch does for
  // track_running_stats=False): the caller updates the running statistics itself, so the
  // exponentialAverageFactor is unused. resultSaveMean / resultSaveInvVariance: the batch mean
  // and 1 / sqrt(biased var + eps), for cudnnBatchNormalizationBackward.
  NNKIT_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(h, CUDNN_BATCHNORM_SPATIAL, blend.one(), blend.zero(),
                                                           bd.x.get(), x.raw_data(), bd.x.get(), y.raw_data(),
                                                           bd.param.get(), w, b, 1.0, nullptr, nullptr, eps,
                                                           save_mean.raw_data(), save_invstd.raw_data()),
                    op);
}

void batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight, const Tensor& save_mean,
                         const Tensor& save_invstd, double eps, const Tensor& dx, const Tensor& dweight,
                         const Tensor& dbias) {
  const char* op = "batch_norm_backward";
  NNKIT_CHECK(eps >= CUDNN_BN_MIN_EPSILON, "[", op, "] eps must be at least ", CUDNN_BN_MIN_EPSILON,
              " on CUDA (cuDNN's minimum), got ", eps);
  (void)cudnn_dtype(x.dtype(), op);
  NNKIT_CHECK(x.dim() >= 2, "[", op, "] internal error: expected [N, C, ...], got ", x.sizes());
  const int dev = prepare(x);
  cudaStream_t stream = current_stream(dev);
  if (x.numel() == 0) {  // no values: zero parameter gradients (dx is empty or has no channels)
    zero_fill(dweight, stream, op);
    zero_fill(dbias, stream, op);
    return;
  }
  check_bn_tensor(x, x, op, "input");
  check_bn_tensor(dy, x, op, "output gradient");
  NNKIT_CHECK(dy.sizes() == x.sizes(), "[", op, "] internal error: gradient of shape ", dy.sizes(), " for input ",
              x.sizes());
  check_numel(x, op, "input");
  if (dx.defined()) {
    check_bn_tensor(dx, x, op, "input gradient");
    NNKIT_CHECK(dx.sizes() == x.sizes(), "[", op, "] internal error: input gradient of shape ", dx.sizes());
  }
  if (weight.defined()) check_bn_param(weight, x, op, "weight");
  if (dweight.defined()) check_bn_param(dweight, x, op, "weight gradient");
  if (dbias.defined()) check_bn_param(dbias, x, op, "bias gradient");
  check_bn_param(save_mean, x, op, "saved mean");
  check_bn_param(save_invstd, x, op, "saved inverse std");
  cudnnHandle_t h = cudnn_handle(dev);
  const Blend blend(x.dtype());
  BnDescs bd(x, op);
  const size_t pbytes = size_t(bd.C) * x.element_size();
  // Outputs that are not wanted go to temporaries (cuDNN computes all three).
  Buffer tmp_w(weight.defined() ? 0 : pbytes, dev), tmp_dw(dweight.defined() ? 0 : pbytes, dev),
      tmp_db(dbias.defined() ? 0 : pbytes, dev), tmp_dx(dx.defined() ? 0 : x.nbytes(), dev);
  const void* w = param_or(weight, tmp_w, h, bd, blend.one(), op);
  void* dx_p = dx.defined() ? dx.raw_data() : tmp_dx.get();
  void* dw_p = dweight.defined() ? dweight.raw_data() : tmp_dw.get();
  void* db_p = dbias.defined() ? dbias.raw_data() : tmp_db.get();
  // dx = 1 * dx_computed + 0 * dx; dweight, dbias likewise (alphaParamDiff = 1, betaParamDiff = 0).
  NNKIT_CUDNN_CHECK(cudnnBatchNormalizationBackward(h, CUDNN_BATCHNORM_SPATIAL, blend.one(), blend.zero(), blend.one(),
                                                    blend.zero(), bd.x.get(), x.raw_data(), bd.x.get(), dy.raw_data(),
                                                    bd.x.get(), dx_p, bd.param.get(), w, dw_p, db_p, eps,
                                                    save_mean.raw_data(), save_invstd.raw_data()),
                    op);
}

}  // namespace nnkit::cuda_detail
