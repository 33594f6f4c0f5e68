// CUDA runtime pieces: device queries, the current stream of each device, cuBLAS/cuDNN handles
// per thread and device, and the caching allocator with its statistics.
#include "runtime.h"

#include <array>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "nnkit/core/device.h"

namespace nnkit {
namespace cuda_detail {

void throw_status(const char* library, const char* call, const char* op, const char* what) {
  detail::throw_error(detail::concat("[", op, "] ", library, " error in ", call, ": ", what));
}

namespace {
constexpr int kMaxDevices = 64;

int query_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver or no device: report none
    return 0;
  }
  return n;
}
int cached_device_count() {
  static const int n = query_device_count();
  return n;
}

thread_local int tl_current_device = -1;

struct Streams {
  std::mutex mutex;
  std::array<cudaStream_t, kMaxDevices> stream{};
  std::array<bool, kMaxDevices> used{};
};
Streams& streams() {
  static Streams* s = new Streams();  // never destroyed: the driver may be gone at exit
  return *s;
}
}  // namespace

void set_device(int device) {
  // The cache is trusted only while the thread's real current device agrees (user code or
  // another library may have called cudaSetDevice).
  int cur = -1;
  if (device == tl_current_device && cudaGetDevice(&cur) == cudaSuccess && cur == device) return;
  int n = cached_device_count();
  NNKIT_CHECK(n > 0, "[cuda] no CUDA device is available on this machine (the build has CUDA support, but "
              "cudaGetDeviceCount found no GPU or no driver)");
  NNKIT_CHECK(device >= 0 && device < n && device < kMaxDevices, "[cuda] device cuda:", device,
              " does not exist (this machine has ", n, " CUDA device", n == 1 ? "" : "s", ")");
  NNKIT_CUDA_CHECK(cudaSetDevice(device), "cuda");
  tl_current_device = device;
}

cudaStream_t current_stream(int device) {
  Streams& s = streams();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.used[size_t(device)]) {
    set_device(device);
    NNKIT_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream[size_t(device)], cudaStreamNonBlocking), "cuda");
    s.used[size_t(device)] = true;
  }
  return s.stream[size_t(device)];
}

namespace {
// Library handles are not thread-safe: one per thread and device, never destroyed (their
// destruction at thread exit can race the driver's teardown at process exit).
struct Handles {
  std::array<cublasHandle_t, kMaxDevices> blas{};
  std::array<cudnnHandle_t, kMaxDevices> dnn{};
};
thread_local Handles tl_handles;
}  // namespace

cublasHandle_t cublas_handle(int device) {
  cublasHandle_t& h = tl_handles.blas[size_t(device)];
  if (!h) {
    set_device(device);
    NNKIT_CUBLAS_CHECK(cublasCreate(&h), "cuda");
    NNKIT_CUBLAS_CHECK(cublasSetStream(h, current_stream(device)), "cuda");
  }
  return h;
}

cudnnHandle_t cudnn_handle(int device) {
  cudnnHandle_t& h = tl_handles.dnn[size_t(device)];
  if (!h) {
    set_device(device);
    NNKIT_CUDNN_CHECK(cudnnCreate(&h), "cuda");
    NNKIT_CUDNN_CHECK(cudnnSetStream(h, current_stream(device)), "cuda");
  }
  return h;
}

void check_launch(const char* op) { NNKIT_CUDA_CHECK(cudaGetLastError(), op); }

// ---- caching allocator ----
// Sizes are rounded to 512 B under 1 MiB and to 2 MiB above, so that the tensors of a training
// step, freed and requested again with the same shapes, find their blocks. A free block is
// reused for a request of at most 1/8 less than its size, only on the stream it was used on
// (all of nnkit's work on a device runs on one stream, so reuse is ordered after the last use).
// When cudaMalloc fails, the cache is emptied and the allocation tried once more.
namespace {
constexpr size_t kSmallRound = 512, kLargeRound = size_t(2) << 20, kLargeMin = size_t(1) << 20;

size_t round_size(size_t n) {
  if (n < kLargeMin) return (n + kSmallRound - 1) / kSmallRound * kSmallRound;
  return (n + kLargeRound - 1) / kLargeRound * kLargeRound;
}

struct FreeBlock {
  void* ptr;
  cudaStream_t stream;
};

struct DeviceCache {
  std::mutex mutex;
  std::multimap<size_t, FreeBlock> free_blocks;  // by size
  std::unordered_map<void*, size_t> live;          // block -> size
  cuda::MemoryStats stats;

  // Caller holds the mutex. Returns the bytes given back.
  void release_free(int device) {
    if (free_blocks.empty()) return;
    set_device(device);
    NNKIT_CUDA_CHECK(cudaDeviceSynchronize(), "empty_cache");
    // Each block leaves the list before it is freed, so a failure cannot leave freed memory there.
    for (auto it = free_blocks.begin(); it != free_blocks.end();) {
      void* p = it->second.ptr;
      stats.reserved -= int64_t(it->first);
      it = free_blocks.erase(it);
      NNKIT_CUDA_CHECK(cudaFree(p), "empty_cache");
    }
  }
};

std::array<DeviceCache*, kMaxDevices>& caches() {
  static auto* c = new std::array<DeviceCache*, kMaxDevices>{};  // never destroyed
  return *c;
}
std::mutex caches_mutex;
DeviceCache& cache(int device) {
  std::lock_guard<std::mutex> lock(caches_mutex);
  auto& slot = caches()[size_t(device)];
  if (!slot) slot = new DeviceCache();
  return *slot;
}

std::string mib(int64_t bytes) { return std::to_string(double(bytes) / double(1 << 20)) + " MiB"; }
}  // namespace

void* allocate(size_t nbytes, int device) {
  set_device(device);
  if (nbytes == 0) return nullptr;
  cudaStream_t stream = current_stream(device);
  size_t size = round_size(nbytes);
  DeviceCache& c = cache(device);
  std::lock_guard<std::mutex> lock(c.mutex);
  void* ptr = nullptr;
  for (auto it = c.free_blocks.lower_bound(size); it != c.free_blocks.end() && it->first - size <= it->first / 8; ++it) {
    if (it->second.stream != stream) continue;
    ptr = it->second.ptr;
    size = it->first;
    c.free_blocks.erase(it);
    break;
  }
  if (!ptr) {
    cudaError_t st = cudaMalloc(&ptr, size);
    if (st == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      c.release_free(device);
      st = cudaMalloc(&ptr, size);
    }
    if (st != cudaSuccess && st != cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // not a lack of memory: a broken context or a bad device
      throw_status("CUDA", "cudaMalloc", "cuda", cudaGetErrorString(st));
    }
    if (st != cudaSuccess) {
      (void)cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      (void)cudaMemGetInfo(&free_b, &total_b);
      detail::throw_error(detail::concat("[cuda] out of memory on cuda:", device, ": tried to allocate ",
                                         mib(int64_t(size)), " (", cudaGetErrorString(st), "); nnkit holds ",
                                         mib(c.stats.allocated), " in tensors and ", mib(c.stats.reserved),
                                         " reserved; the device has ", mib(int64_t(free_b)), " free of ",
                                         mib(int64_t(total_b))));
    }
    c.stats.reserved += int64_t(size);
    ++c.stats.num_device_allocs;
  }
  c.live.emplace(ptr, size);
  c.stats.allocated += int64_t(size);
  ++c.stats.num_allocs;
  if (c.stats.allocated > c.stats.peak_allocated) c.stats.peak_allocated = c.stats.allocated;
  return ptr;
}

void release(void* ptr, int device) {
  if (!ptr) return;
  DeviceCache& c = cache(device);
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.live.find(ptr);
  if (it == c.live.end()) return;  // not ours (cannot happen for Storage-owned memory)
  size_t size = it->second;
  c.live.erase(it);
  c.stats.allocated -= int64_t(size);
  c.free_blocks.emplace(size, FreeBlock{ptr, current_stream(device)});
}

}  // namespace cuda_detail

namespace cuda {

int device_count() { return cuda_detail::cached_device_count(); }
bool is_available() { return device_count() > 0; }

void synchronize() {
  auto& s = cuda_detail::streams();
  std::vector<int> used;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    for (int d = 0; d < cuda_detail::kMaxDevices; ++d)
      if (s.used[size_t(d)]) used.push_back(d);
  }
  for (int d : used) {
    cuda_detail::set_device(d);
    NNKIT_CUDA_CHECK(cudaDeviceSynchronize(), "synchronize");
  }
}

MemoryStats memory_stats(int device) {
  if (device < 0 || device >= cuda_detail::kMaxDevices || device >= device_count()) return {};
  auto& c = cuda_detail::cache(device);
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void reset_peak_memory_stats(int device) {
  if (device < 0 || device >= cuda_detail::kMaxDevices || device >= device_count()) return;
  auto& c = cuda_detail::cache(device);
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.peak_allocated = c.stats.allocated;
}

void empty_cache() {
  for (int d = 0; d < std::min(device_count(), cuda_detail::kMaxDevices); ++d) {
    auto& c = cuda_detail::cache(d);
    std::lock_guard<std::mutex> lock(c.mutex);
    c.release_free(d);
  }
}

}  // namespace cuda
}  // namespace nnkit
