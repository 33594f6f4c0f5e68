#pragma once
// Private to the CUDA backend (cuda/): status checks that turn every CUDA, cuBLAS and cuDNN
// failure into an nnkit::Error naming the call and the op, the current device and stream,
// per-thread library handles bound to that stream, and scratch buffers from the caching
// allocator. Only files under cuda/ include this (it pulls in the CUDA headers).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>

#include "nnkit/core/error.h"
#include "nnkit/core/tensor.h"

namespace nnkit::cuda_detail {

[[noreturn]] void throw_status(const char* library, const char* call, const char* op, const char* what);

}  // namespace nnkit::cuda_detail

// NNKIT_CUDA_CHECK(cudaMemcpyAsync(...), "copy_"): throws "[copy_] CUDA error in cudaMemcpyAsync(...): <reason>".
#define NNKIT_CUDA_CHECK(call, op)                                                                    \
  do {                                                                                                \
    cudaError_t nnkit_status_ = (call);                                                               \
    if (nnkit_status_ != cudaSuccess) [[unlikely]] {                                                  \
      (void)cudaGetLastError(); /* clear a non-sticky error so later calls are not blamed */          \
      ::nnkit::cuda_detail::throw_status("CUDA", #call, op, cudaGetErrorString(nnkit_status_));       \
    }                                                                                                 \
  } while (0)
#define NNKIT_CUBLAS_CHECK(call, op)                                                                  \
  do {                                                                                                \
    cublasStatus_t nnkit_status_ = (call);                                                            \
    if (nnkit_status_ != CUBLAS_STATUS_SUCCESS) [[unlikely]]                                          \
      ::nnkit::cuda_detail::throw_status("cuBLAS", #call, op, cublasGetStatusString(nnkit_status_));  \
  } while (0)
#define NNKIT_CUDNN_CHECK(call, op)                                                                   \
  do {                                                                                                \
    cudnnStatus_t nnkit_status_ = (call);                                                             \
    if (nnkit_status_ != CUDNN_STATUS_SUCCESS) [[unlikely]]                                           \
      ::nnkit::cuda_detail::throw_status("cuDNN", #call, op, cudnnGetErrorString(nnkit_status_));     \
  } while (0)

namespace nnkit::cuda_detail {

// Makes `device` the calling thread's current CUDA device (cached: cheap when unchanged).
void set_device(int device);
// The device's current stream (created once, non-blocking), after set_device(device).
cudaStream_t current_stream(int device);
// Per thread and device, created on first use and bound to current_stream(device).
cublasHandle_t cublas_handle(int device);
cudnnHandle_t cudnn_handle(int device);
// Throws if the last kernel launch failed (bad configuration, no kernel image for this GPU).
void check_launch(const char* op);

// Caching allocator entry points (also used by Storage).
void* allocate(size_t nbytes, int device);
void release(void* ptr, int device);

// Scratch memory (cuDNN workspaces, temporaries) from the caching allocator, freed on scope
// exit; safe because all work on a device runs on its one stream, in order.
class Buffer {
 public:
  Buffer(size_t nbytes, int device) : ptr_(nbytes ? allocate(nbytes, device) : nullptr), device_(device) {}
  ~Buffer() {
    if (ptr_) release(ptr_, device_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* get() const { return ptr_; }

 private:
  void* ptr_;
  int device_;
};

// The device index of a CUDA tensor, after making it current.
inline int prepare(const Tensor& t) {
  int d = t.device().index;
  set_device(d);
  return d;
}

// Blocks of 256 threads, at most 65535 * 8 blocks (kernels loop over the rest).
inline unsigned grid_for(int64_t n, int threads = 256) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks > 65535 * 8) blocks = 65535 * 8;
  return unsigned(blocks < 1 ? 1 : blocks);
}

}  // namespace nnkit::cuda_detail
