// Core runtime: errors, dtype/device names, storage allocation, TensorImpl, grad mode.
#include <array>
#include <bit>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>
#include <cstring>
#include <iostream>
#include <ostream>
#include <utility>

#include "autograd/meta.h"
#include "core/dispatch.h"
#include "core/tls.h"
#include "nnkit/autograd/grad_mode.h"
#include "nnkit/core/device.h"
#include "nnkit/core/dtype.h"
#include "nnkit/core/error.h"
#include "nnkit/core/storage.h"
#include "nnkit/core/tensor_impl.h"

namespace nnkit {

namespace detail {
void throw_error(std::string msg) { throw Error(std::move(msg)); }
}  // namespace detail

namespace {
std::mutex warning_mutex;
WarningHandler& warning_handler() {
  static WarningHandler h;
  return h;
}
}  // namespace
WarningHandler set_warning_handler(WarningHandler handler) {
  std::lock_guard<std::mutex> lock(warning_mutex);
  return std::exchange(warning_handler(), std::move(handler));
}
void warn(std::string_view message) {
  std::lock_guard<std::mutex> lock(warning_mutex);
  if (warning_handler()) {
    warning_handler()(message);
  } else {
    std::cerr << "nnkit warning: " << message << std::endl;
  }
}

namespace detail {
std::string dtype_set_names(DtypeSet set) {
  std::string out;
  int n = 0, total = std::popcount(set);
  for (const DtypeInfo& r : kDtypeTable) {
    if (!(set & dtype_bit(r.dtype))) continue;
    if (n > 0) out += n + 1 == total ? " or " : ", ";
    out += r.name;
    ++n;
  }
  return out;
}
void throw_unsupported_dtype(std::string_view op, Dtype d, DtypeSet set) {
  if (set == kNumericTypes && d == kBool)
    throw_error(concat("[", op, "] not implemented for bool tensors; convert with .to(nnkit::kFloat32) first"));
  if (set == kFloatingTypes)
    throw_error(concat("[", op, "] expects a floating-point tensor (", dtype_set_names(set), "), got ", d));
  throw_error(concat("[", op, "] not implemented for ", d, " tensors (supported: ", dtype_set_names(set), ")"));
}
}  // namespace detail

std::ostream& operator<<(std::ostream& os, Dtype d) { return os << dtype_name(d); }

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

// ---- Storage ----
namespace cuda_detail {
// Provided by the CUDA backend (cuda/) or by the stubs below in a CPU-only build.
void* allocate(size_t nbytes, int device);
void release(void* ptr, int device);
}  // namespace cuda_detail

// CPU memory: blocks of 64 KiB and more are cached by size after use, since large tensors are
// freed and re-requested with the same sizes every training step, and fresh pages from the
// kernel cost a page fault each (this halved the time of a small CNN's training step).
namespace {
constexpr size_t kCacheMin = 64 << 10;
constexpr size_t kCacheMaxBytes = size_t(2) << 30;

struct CpuCache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;
  size_t cached_bytes = 0;
  ~CpuCache() { release_all(); }
  void release_all() {
    std::lock_guard<std::mutex> lock(mutex);
    for (auto& [size, blocks] : free_blocks)
      for (void* p : blocks) std::free(p);
    free_blocks.clear();
    cached_bytes = 0;
  }
};
CpuCache& cpu_cache() {
  static CpuCache* cache = new CpuCache();  // never destroyed: tensors may die after main
  return *cache;
}
// Blocks under 64 KiB come from per-thread free lists, one per power-of-two size class
// (64 B .. 32 KiB): tiny tensors are created and dropped by the million, and glibc's
// aligned_alloc fragments under that pattern (a tiny add went from 230 ns to 400 ns after a
// few million calls). Each thread keeps at most kSmallPerClass blocks per class.
// Under AddressSanitizer no block is ever reused, so that use-after-free stays detectable.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kReuseBlocks = false;
#else
constexpr bool kReuseBlocks = true;
#endif
constexpr int kSmallClasses = 10;  // 64 << 9 == 32 KiB
constexpr size_t kSmallPerClass = 64;
int small_class(size_t bytes) {  // bytes <= 32 KiB
  int c = 0;
  size_t cap = 64;
  while (cap < bytes) {
    cap <<= 1;
    ++c;
  }
  return c;
}
// The hot path reads only trivially constructed, trivially destructible thread_locals: a
// thread_local with a destructor is reached through an init-guard wrapper whose guard uses the
// default TLS model, i.e. a __tls_get_addr call per access (~4% of a tiny op with autograd).
// The cache itself lives on the heap; `SmallCacheOwner` (touched once per thread) frees it at
// thread exit. `tl_small_dead` stays readable while other thread_locals are torn down.
struct SmallCache {
  std::array<std::vector<void*>, kSmallClasses> free;
  ~SmallCache() {
    for (auto& v : free)
      for (void* p : v) std::free(p);
  }
};
NNKIT_TLS thread_local bool tl_small_dead = false;
NNKIT_TLS thread_local SmallCache* tl_small_ptr = nullptr;
struct SmallCacheOwner {
  bool armed = false;
  ~SmallCacheOwner() {
    tl_small_dead = true;
    delete std::exchange(tl_small_ptr, nullptr);
  }
};
thread_local SmallCacheOwner tl_small_owner;
// This thread's cache, or null once the thread is exiting.
inline SmallCache* small_cache() {
  if (tl_small_ptr) [[likely]]
    return tl_small_ptr;
  if (tl_small_dead) return nullptr;
  tl_small_owner.armed = true;  // first use registers the owner's destructor for this thread
  tl_small_ptr = new SmallCache();
  return tl_small_ptr;
}

size_t round_block(size_t nbytes) {
  if (nbytes < kCacheMin) return size_t(64) << small_class(std::max<size_t>(nbytes, 1));
  return (nbytes + kCacheMin - 1) & ~(kCacheMin - 1);
}
void* cpu_alloc(size_t bytes) {
  if (!kReuseBlocks) return std::aligned_alloc(64, bytes);
  if (bytes < kCacheMin) {
    if (SmallCache* c = small_cache()) {
      auto& v = c->free[small_class(bytes)];
      if (!v.empty()) {
        void* p = v.back();
        v.pop_back();
        return p;
      }
    }
    return std::aligned_alloc(64, bytes);
  }
  {
    CpuCache& c = cpu_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(bytes);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached_bytes -= bytes;
      return p;
    }
  }
  return std::aligned_alloc(64, bytes);
}
void cpu_free(void* p, size_t bytes) {
  if (!kReuseBlocks) {
    std::free(p);
    return;
  }
  if (bytes < kCacheMin) {
    if (SmallCache* c = small_cache()) {
      auto& v = c->free[small_class(bytes)];
      if (v.size() < kSmallPerClass) {
        v.push_back(p);
        return;
      }
    }
    std::free(p);
    return;
  }
  {
    CpuCache& c = cpu_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.cached_bytes + bytes <= kCacheMaxBytes) {
      c.free_blocks[bytes].push_back(p);
      c.cached_bytes += bytes;
      return;
    }
  }
  std::free(p);
}
}  // namespace

void* RefCounted::operator new(size_t bytes) {
  void* p = cpu_alloc(round_block(bytes));
  if (!p) throw std::bad_alloc();
  return p;
}
void RefCounted::operator delete(void* p, size_t bytes) noexcept { cpu_free(p, round_block(bytes)); }

void cpu_empty_cache() { cpu_cache().release_all(); }

IntrusivePtr<Storage> Storage::allocate(size_t nbytes, Device device) {
  IntrusivePtr<Storage> s(new Storage(), IntrusivePtr<Storage>::Adopt{});
  s->nbytes_ = nbytes;
  s->device_ = device;
  if (device.is_cpu()) {
    // 64-byte alignment for AVX-512 loads; at least one line so data() is never null.
    size_t bytes = round_block(nbytes);
    s->data_ = cpu_alloc(bytes);
    NNKIT_CHECK(s->data_ != nullptr, "[allocate] out of memory allocating ", nbytes, " bytes on the CPU");
    s->block_bytes_ = bytes;
    s->kind_ = Storage::Kind::CpuBlock;
  } else {
    int index = device.index;
    s->data_ = cuda_detail::allocate(nbytes, index);
    s->kind_ = Storage::Kind::Cuda;
  }
  return s;
}

IntrusivePtr<Storage> Storage::wrap(void* data, size_t nbytes, Device device, std::function<void(void*)> deleter) {
  IntrusivePtr<Storage> s(new Storage(), IntrusivePtr<Storage>::Adopt{});
  s->data_ = data;
  s->nbytes_ = nbytes;
  s->device_ = device;
  s->deleter_ = std::move(deleter);
  s->kind_ = Storage::Kind::Wrapped;
  return s;
}

Storage::~Storage() {
  if (!data_) return;
  switch (kind_) {
    case Kind::CpuBlock: cpu_free(data_, block_bytes_); break;
    case Kind::Cuda: cuda_detail::release(data_, device_.index); break;
    case Kind::Wrapped:
      if (deleter_) deleter_(data_);
      break;
  }
}

// ---- TensorImpl ----
Shape contiguous_strides(const Shape& sizes) {
  Shape strides = Shape::filled(sizes.size(), 1);
  int64_t acc = 1;
  for (size_t i = sizes.size(); i-- > 0;) {
    strides[i] = acc;
    acc *= std::max<int64_t>(sizes[i], 1);
  }
  return strides;
}

TensorImpl::TensorImpl(IntrusivePtr<Storage> storage, Shape sizes, Shape strides, int64_t offset, Dtype dtype)
    : storage_(std::move(storage)), sizes_(std::move(sizes)), strides_(std::move(strides)), offset_(offset),
      dtype_(dtype) {
  refresh();
}

TensorImpl::~TensorImpl() {
  if (autograd_ && autograd_->retains_grad && autograd_->grad_fn) autograd_->grad_fn->remove_retain_grad_hook(this);
}

void TensorImpl::set_storage(IntrusivePtr<Storage> storage, Shape sizes, Shape strides, int64_t offset, Dtype dtype) {
  storage_ = std::move(storage);
  sizes_ = std::move(sizes);
  strides_ = std::move(strides);
  offset_ = offset;
  dtype_ = dtype;
  refresh();
}

void TensorImpl::refresh() {
  numel_ = sizes_.numel();
  // Contiguous in PyTorch's sense: strides of size-1 dimensions do not matter.
  contiguous_ = true;
  int64_t expected = 1;
  for (size_t i = sizes_.size(); i-- > 0;) {
    if (sizes_[i] == 1) continue;
    if (strides_[i] != expected) {
      contiguous_ = false;
      break;
    }
    expected *= sizes_[i];
  }
  if (numel_ == 0) contiguous_ = true;
}

autograd::AutogradMeta& TensorImpl::autograd_or_create() {
  if (!autograd_) autograd_ = std::make_unique<autograd::AutogradMeta>();
  return *autograd_;
}

// ---- grad mode ----
namespace {
NNKIT_TLS thread_local bool grad_enabled = true;
}
bool GradMode::is_enabled() { return grad_enabled; }
void GradMode::set_enabled(bool enabled) { grad_enabled = enabled; }

// ---- CUDA: settings shared by both builds, stubs for a CPU-only build ----
namespace cuda {
namespace {
std::atomic<bool> tf32_allowed{false};
}
void set_allow_tf32(bool allow) { tf32_allowed.store(allow, std::memory_order_relaxed); }
bool allow_tf32() { return tf32_allowed.load(std::memory_order_relaxed); }
int64_t memory_allocated(int device) { return memory_stats(device).allocated; }
int64_t memory_reserved(int device) { return memory_stats(device).reserved; }
int64_t max_memory_allocated(int device) { return memory_stats(device).peak_allocated; }
}  // namespace cuda

#ifndef NNKIT_WITH_CUDA
namespace cuda {
bool is_available() { return false; }
int device_count() { return 0; }
void synchronize() {}
MemoryStats memory_stats(int) { return {}; }
void reset_peak_memory_stats(int) {}
void empty_cache() {}
}  // namespace cuda
namespace cuda_detail {
void* allocate(size_t, int) {
  detail::throw_error("[cuda] this build of nnkit has no CUDA support (configure with NNKIT_CUDA=ON on a machine with the CUDA toolkit and cuDNN)");
}
void release(void*, int) {}
}  // namespace cuda_detail
#endif

}  // namespace nnkit
