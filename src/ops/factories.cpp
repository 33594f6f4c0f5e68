// Tensor factories.
#include <cmath>

#include "core/generator.h"
#include "cpu/loops.h"
#include "ops/common.h"
#include "backend/backend.h"

namespace nnkit {

namespace {
Tensor finish(Tensor t, const TensorOptions& o) {
  if (o.requires_grad) {
    NNKIT_CHECK(t.is_floating_point(), "[factory] only floating-point tensors can require grad, got ", t.dtype());
    t.requires_grad_(true);
  }
  return t;
}

void check_sizes(const Shape& sizes, std::string_view op) {
  for (int64_t s : sizes)
    NNKIT_CHECK(s >= 0, "[", op, "] negative dimension ", s, " in size ", sizes);
}

// Fills a contiguous CPU tensor with f(i) for each flat index i.
template <typename T, typename F>
void fill_indexed(const Tensor& t, F f) {
  T* p = t.data_ptr<T>();
  cpu::parallel_for(t.numel(), cpu::kParallelGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) p[i] = f(i);
  });
}

// Random factories draw on the CPU (so a seed gives the same values on every device) and copy.
template <typename Fill>
Tensor random_tensor(const Shape& sizes, const TensorOptions& o, Dtype default_dtype, std::string_view op, Fill fill) {
  check_sizes(sizes, op);
  Dtype dtype = o.dtype.value_or(default_dtype);
  Tensor t = detail::empty_contig(sizes, dtype, Device::cpu());
  fill(t);
  return finish(t.to(o.device.value_or(Device::cpu())), o);
}
}  // namespace

Tensor empty(const Shape& sizes, const TensorOptions& o) {
  check_sizes(sizes, "empty");
  Dtype dtype = o.dtype.value_or(kFloat32);
  int64_t n = sizes.numel();
  auto storage = Storage::allocate(size_t(n) * element_size(dtype), o.device.value_or(Device::cpu()));
  Tensor t(make_intrusive<TensorImpl>(std::move(storage), sizes, contiguous_strides(sizes), 0, dtype));
  return finish(std::move(t), o);
}

Tensor full(const Shape& sizes, double value, const TensorOptions& o) {
  TensorOptions no_grad = o;
  no_grad.requires_grad = false;
  Tensor t = empty(sizes, no_grad);
  t.fill_(value);
  return finish(std::move(t), o);
}
Tensor zeros(const Shape& sizes, const TensorOptions& o) { return full(sizes, 0.0, o); }
Tensor ones(const Shape& sizes, const TensorOptions& o) { return full(sizes, 1.0, o); }
Tensor scalar_tensor(double value, const TensorOptions& o) { return full(Shape(), value, o); }

Tensor empty_like(const Tensor& t, const TensorOptions& o) {
  detail::check_defined(t, "empty_like");
  return empty(t.sizes(), {.dtype = o.dtype.value_or(t.dtype()), .device = o.device.value_or(t.device()), .requires_grad = o.requires_grad});
}
Tensor zeros_like(const Tensor& t, const TensorOptions& o) {
  detail::check_defined(t, "zeros_like");
  return zeros(t.sizes(), {.dtype = o.dtype.value_or(t.dtype()), .device = o.device.value_or(t.device()), .requires_grad = o.requires_grad});
}
Tensor ones_like(const Tensor& t, const TensorOptions& o) {
  detail::check_defined(t, "ones_like");
  return ones(t.sizes(), {.dtype = o.dtype.value_or(t.dtype()), .device = o.device.value_or(t.device()), .requires_grad = o.requires_grad});
}
Tensor full_like(const Tensor& t, double value, const TensorOptions& o) {
  detail::check_defined(t, "full_like");
  return full(t.sizes(), value,
              {.dtype = o.dtype.value_or(t.dtype()), .device = o.device.value_or(t.device()), .requires_grad = o.requires_grad});
}
Tensor rand_like(const Tensor& t, const TensorOptions& o) {
  detail::check_defined(t, "rand_like");
  return rand(t.sizes(), {.dtype = o.dtype.value_or(t.dtype()), .device = o.device.value_or(t.device()), .requires_grad = o.requires_grad});
}
Tensor randn_like(const Tensor& t, const TensorOptions& o) {
  detail::check_defined(t, "randn_like");
  return randn(t.sizes(), {.dtype = o.dtype.value_or(t.dtype()), .device = o.device.value_or(t.device()), .requires_grad = o.requires_grad});
}

Tensor arange(double start, double end, double step, const TensorOptions& o) {
  NNKIT_CHECK(step != 0, "[arange] step must be nonzero");
  NNKIT_CHECK(std::isfinite(start) && std::isfinite(end), "[arange] unsupported range: ", start, " -> ", end);
  NNKIT_CHECK((step > 0 && end >= start) || (step < 0 && end <= start),
              "[arange] upper bound and larger bound inconsistent with step sign");
  auto n = int64_t(std::ceil((end - start) / step));
  Dtype dtype = o.dtype.value_or(kFloat32);
  Tensor t = detail::empty_contig({n}, dtype, Device::cpu());
  detail::dispatch<detail::kAllTypes>(dtype, "factory", [&]<typename T>() {
    fill_indexed<T>(t, [&](int64_t i) { return static_cast<T>(start + double(i) * step); });
  });
  return finish(t.to(o.device.value_or(Device::cpu())), o);
}
Tensor arange(int64_t start, int64_t end, int64_t step, const TensorOptions& o) {
  TensorOptions opts = o;
  if (!opts.dtype) opts.dtype = kInt64;
  return arange(double(start), double(end), double(step), opts);
}
Tensor arange(int64_t end, const TensorOptions& o) { return arange(int64_t(0), end, int64_t(1), o); }

Tensor linspace(double start, double end, int64_t steps, const TensorOptions& o) {
  NNKIT_CHECK(steps >= 0, "[linspace] number of steps must be non-negative, got ", steps);
  Dtype dtype = o.dtype.value_or(kFloat32);
  Tensor t = detail::empty_contig({steps}, dtype, Device::cpu());
  double step = steps > 1 ? (end - start) / double(steps - 1) : 0.0;
  int64_t half = steps / 2;
  detail::dispatch<detail::kAllTypes>(dtype, "factory", [&]<typename T>() {
    // PyTorch fills the first half from start and the second half from end (symmetric rounding).
    fill_indexed<T>(t, [&](int64_t i) {
      return static_cast<T>(i < half ? start + step * double(i) : end - step * double(steps - i - 1));
    });
  });
  return finish(t.to(o.device.value_or(Device::cpu())), o);
}

Tensor eye(int64_t n, std::optional<int64_t> m_opt, const TensorOptions& o) {
  int64_t m = m_opt.value_or(n);
  NNKIT_CHECK(n >= 0 && m >= 0, "[eye] n and m must be non-negative, got ", n, " and ", m);
  Dtype dtype = o.dtype.value_or(kFloat32);
  Tensor t = zeros({n, m}, {.dtype = dtype});
  detail::dispatch<detail::kAllTypes>(dtype, "factory", [&]<typename T>() {
    T* p = t.data_ptr<T>();
    for (int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = T(1);
  });
  return finish(t.to(o.device.value_or(Device::cpu())), o);
}

namespace {
// rand/randn: Philox counter blocks drawn by the tensor's backend (the same values on every
// device).
Tensor random_fill(const Shape& sizes, const TensorOptions& o, const char* op, bool normal) {
  check_sizes(sizes, op);
  Dtype dtype = o.dtype.value_or(kFloat32);
  if (!is_floating_point(dtype)) detail::throw_unsupported_dtype(op, dtype, detail::kFloatingTypes);
  Tensor t = detail::empty_contig(sizes, dtype, o.device.value_or(Device::cpu()));
  auto r = detail::reserve_random(uint64_t((t.numel() + 1) / 2));
  if (t.numel() > 0) {
    if (normal)
      detail::backend(t).fill_normal(t, r.seed, r.offset);
    else
      detail::backend(t).fill_uniform(t, r.seed, r.offset);
  }
  return finish(std::move(t), o);
}
}  // namespace

Tensor rand(const Shape& sizes, const TensorOptions& o) { return random_fill(sizes, o, "rand", false); }
Tensor randn(const Shape& sizes, const TensorOptions& o) { return random_fill(sizes, o, "randn", true); }

Tensor randint(int64_t low, int64_t high, const Shape& sizes, const TensorOptions& o) {
  NNKIT_CHECK(low < high, "[randint] expects low < high, got low=", low, " high=", high);
  return random_tensor(sizes, o, kInt64, "randint", [low, high](const Tensor& t) {
    int64_t n = t.numel();
    auto r = detail::reserve_random(uint64_t(n));
    auto range = uint64_t(high - low);
    Tensor tmp = t.dtype() == kInt64 ? t : detail::empty_contig(t.sizes(), kInt64, Device::cpu());
    int64_t* p = tmp.data_ptr<int64_t>();
    cpu::parallel_for(n, cpu::kParallelGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        uint32_t w[4];
        detail::Philox::block(r.seed, r.offset + uint64_t(i), w);
        uint64_t x = uint64_t(w[0]) << 32 | w[1];
        p[i] = low + int64_t(x % range);  // bias < range / 2^64: negligible
      }
    });
    if (!tmp.is_same(t)) detail::copy_kernel(t, tmp);
  });
}
Tensor randint(int64_t high, const Shape& sizes, const TensorOptions& o) { return randint(0, high, sizes, o); }

Tensor from_blob(void* data, const Shape& sizes, Dtype dtype, std::optional<Shape> strides, Device device) {
  NNKIT_CHECK(data != nullptr || sizes.numel() == 0, "[from_blob] data is a null pointer");
  if (device.is_cuda())
    NNKIT_CHECK(device.index >= 0 && device.index < cuda::device_count(), "[cuda] from_blob: device ", device,
                " does not exist (this machine has ", cuda::device_count(), " CUDA device(s))");
  check_sizes(sizes, "from_blob");
  Shape st = strides ? *strides : contiguous_strides(sizes);
  NNKIT_CHECK(st.size() == sizes.size(), "[from_blob] got ", sizes.size(), " sizes but ", st.size(), " strides");
  int64_t extent = 1;
  for (size_t i = 0; i < sizes.size(); ++i)
    if (sizes[i] > 0) extent += (sizes[i] - 1) * st[i];
  auto storage = Storage::wrap(data, size_t(extent) * element_size(dtype), device, nullptr);
  return Tensor(make_intrusive<TensorImpl>(std::move(storage), sizes, st, 0, dtype));
}

template <typename T>
Tensor from_vector(const std::vector<T>& values, std::optional<Shape> sizes, const TensorOptions& o) {
  Shape sz = sizes ? *sizes : Shape{int64_t(values.size())};
  NNKIT_CHECK(sz.numel() == int64_t(values.size()), "[from_vector] ", values.size(), " values do not fill shape ", sz);
  using Stored = std::conditional_t<std::is_same_v<T, bool>, bool,
                                    std::conditional_t<std::is_integral_v<T>, int64_t, T>>;
  Tensor t = detail::empty_contig(sz, dtype_of<Stored>, Device::cpu());
  Stored* p = t.data_ptr<Stored>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<Stored>(values[i]);
  Dtype want = o.dtype.value_or(dtype_of<Stored>);
  return finish(t.to(o.device.value_or(Device::cpu()), want), o);
}
template Tensor from_vector<float>(const std::vector<float>&, std::optional<Shape>, const TensorOptions&);
template Tensor from_vector<double>(const std::vector<double>&, std::optional<Shape>, const TensorOptions&);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, std::optional<Shape>, const TensorOptions&);
template Tensor from_vector<int32_t>(const std::vector<int32_t>&, std::optional<Shape>, const TensorOptions&);
template Tensor from_vector<bool>(const std::vector<bool>&, std::optional<Shape>, const TensorOptions&);

}  // namespace nnkit
