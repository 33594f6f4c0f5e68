// Reductions over all or some dimensions: sum, mean, var, std, amax/amin, max/min with
// indices, argmax/argmin; and sum_to (the gradient of broadcasting).
#include <cmath>
#include <limits>

#include "autograd/function.h"
#include "cpu/loops.h"
#include "ops/common.h"
#include "ops/cuda_ops.h"
#include "ops/scalar_math.h"

namespace nnkit {

using autograd::make_node;
using autograd::needs_grad;
using autograd::SavedTensor;
using autograd::set_history;

namespace detail {
Shape normalize_dims(const Shape& dims, int64_t ndim, std::string_view op) {
  Shape out;
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, ndim, op);
    for (int64_t e : out) NNKIT_CHECK(e != w, "[", op, "] dim ", w, " appears multiple times in the list of dims");
    out.push_back(w);
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace detail

namespace {

struct Layout {
  Shape out_sizes;      // keepdim=false shape
  Shape keep_sizes;     // keepdim=true shape
  Shape kept_sizes, kept_strides;
  Shape red_sizes, red_strides;
  int64_t out_numel = 1, red_numel = 1;
};

Layout make_layout(const Tensor& x, const Shape& dims) {
  Layout L;
  int64_t nd = x.dim();
  std::vector<bool> reduced(size_t(std::max<int64_t>(nd, 1)), dims.empty());
  for (int64_t d : dims) reduced[size_t(d)] = true;
  for (int64_t d = 0; d < nd; ++d) {
    if (reduced[size_t(d)]) {
      L.red_sizes.push_back(x.size(d));
      L.red_strides.push_back(x.stride(d));
      L.keep_sizes.push_back(1);
    } else {
      L.kept_sizes.push_back(x.size(d));
      L.kept_strides.push_back(x.stride(d));
      L.out_sizes.push_back(x.size(d));
      L.keep_sizes.push_back(x.size(d));
    }
  }
  L.out_numel = L.kept_sizes.numel();
  L.red_numel = L.red_sizes.numel();
  return L;
}

// CUDA: x with the reduced dims moved last, as a contiguous [out_numel, red_numel] tensor
// (the CUDA kernels reduce rows).
Tensor rows_of(const Tensor& x, const Shape& dims, const Layout& L) {
  Tensor d = x.detach();
  if (x.dim() == 0) return d.reshape({1, 1});
  std::vector<bool> reduced(size_t(x.dim()), false);
  for (int64_t r : dims) reduced[size_t(r)] = true;
  Shape perm;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (!reduced[size_t(i)]) perm.push_back(i);
  for (int64_t i = 0; i < x.dim(); ++i)
    if (reduced[size_t(i)]) perm.push_back(i);
  return d.permute(perm).contiguous().reshape({L.out_numel, L.red_numel});
}

Tensor cuda_reduce(const Tensor& x, const Shape& dims, const Layout& L, bool keepdim, Dtype dtype,
                   detail::RowReduce op, double correction = 0) {
  Tensor out = detail::empty_contig(keepdim ? L.keep_sizes : L.out_sizes, dtype, x.device());
  cuda_detail::reduce_rows(out, rows_of(x, dims, L), op, correction);
  return out;
}

// For each output element: acc = init; combine(acc, value, flat index within the reduced
// sub-tensor) over its reduced elements. merge joins partial results of a split reduction.
template <typename T, typename Acc, typename Combine, typename Merge>
std::vector<Acc> reduce_cpu(const Tensor& x, const Layout& L, Acc init, Combine combine, Merge merge) {
  std::vector<Acc> out(size_t(L.out_numel), init);
  if (L.out_numel == 0 || L.red_numel == 0) return out;  // empty reductions keep `init`
  const char* base = static_cast<const char*>(x.raw_data());
  auto red_plan = cpu::make_plan<1>(L.red_sizes, {L.red_strides});
  std::array<size_t, 1> elem{sizeof(T)};
  auto reduce_range = [&](const char* obase, int64_t rb, int64_t re, Acc& acc) {
    int64_t pos = rb;
    cpu::run_range<1>(red_plan, {const_cast<char*>(obase)}, elem, rb, re,
                      [&](const std::array<char*, 1>& p, const std::array<int64_t, 1>& st, int64_t n) {
                        const char* q = p[0];
                        if (st[0] == int64_t(sizeof(T))) {
                          const T* v = reinterpret_cast<const T*>(q);
                          for (int64_t i = 0; i < n; ++i) combine(acc, v[i], pos + i);
                        } else {
                          for (int64_t i = 0; i < n; ++i, q += st[0]) combine(acc, *reinterpret_cast<const T*>(q), pos + i);
                        }
                        pos += n;
                      });
  };
  auto out_offset = [&](int64_t o) {
    int64_t off = 0;
    for (size_t d = L.kept_sizes.size(); d-- > 0;) {
      off += (o % L.kept_sizes[d]) * L.kept_strides[d];
      o /= L.kept_sizes[d];
    }
    return off * int64_t(sizeof(T));
  };
  int nthreads = omp_get_max_threads();
  if (L.out_numel >= nthreads || L.red_numel < cpu::kParallelGrain) {
    int64_t grain = std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(L.red_numel, 1));
    cpu::parallel_for(L.out_numel, grain, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) reduce_range(base + out_offset(o), 0, L.red_numel, out[size_t(o)]);
    });
  } else {
    // Few outputs, long reductions: split each reduction across threads, merge in order.
    for (int64_t o = 0; o < L.out_numel; ++o) {
      std::vector<Acc> partial(size_t(nthreads), init);
      const char* ob = base + out_offset(o);
      cpu::parallel_for(L.red_numel, cpu::kParallelGrain, [&](int64_t b, int64_t e) {
        reduce_range(ob, b, e, partial[size_t(omp_get_thread_num())]);
      });
      for (auto& p : partial) merge(out[size_t(o)], p);
    }
  }
  return out;
}

template <typename T, typename Acc, typename Map>
Tensor finish_output(const Layout& L, bool keepdim, Dtype dtype, const std::vector<Acc>& acc, Map map) {
  Tensor out = detail::empty_contig(keepdim ? L.keep_sizes : L.out_sizes, dtype, Device::cpu());
  T* p = out.data_ptr<T>();
  for (size_t i = 0; i < acc.size(); ++i) p[i] = map(acc[i]);
  return out;
}

// Gradient helper: bring a reduced gradient back to the input's shape.
Tensor expand_back(const Tensor& g, const Shape& keep_sizes, const Shape& in_sizes) {
  return g.reshape(keep_sizes).expand(in_sizes);
}

Shape dims_or_all(const Tensor& x, const Shape& dims, std::string_view op) {
  if (dims.empty()) {
    Shape all;
    for (int64_t d = 0; d < x.dim(); ++d) all.push_back(d);
    return all;
  }
  return detail::normalize_dims(dims, x.dim(), op);
}

template <typename T>
using AccOf = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

Tensor sum_impl(const Tensor& x, const Shape& dims_in, bool keepdim, bool mean) {
  const char* name = mean ? "mean" : "sum";
  detail::check_defined(x, name);
  Shape dims = dims_or_all(x, dims_in, name);
  Layout L = make_layout(x, dims);
  Dtype dtype = x.dtype();
  if (mean)
    NNKIT_CHECK(x.is_floating_point(), "[mean] could not infer output dtype: input dtype must be floating point, got ",
                dtype, "; convert with .to(nnkit::kFloat32)");
  else if (dtype == kBool)
    dtype = kInt64;
  Tensor out;
  if (x.is_cuda()) out = cuda_reduce(x, dims, L, keepdim, dtype, mean ? detail::RowReduce::Mean : detail::RowReduce::Sum);
  else detail::dispatch<detail::kAllTypes>(x.dtype(), name, [&]<typename T>() {
    using Acc = AccOf<T>;
    auto acc = reduce_cpu<T, Acc>(
        x, L, Acc(0), [](Acc& a, T v, int64_t) { a += Acc(v); }, [](Acc& a, const Acc& b) { a += b; });
    double count = double(L.red_numel);
    detail::dispatch<detail::kAllTypes>(dtype, name, [&]<typename R>() {
      out = finish_output<R, Acc>(L, keepdim, dtype, acc, [&](Acc a) {
        return mean ? static_cast<R>(double(a) / count) : static_cast<R>(a);
      });
    });
  });
  if (needs_grad(x)) {
    Shape keep = L.keep_sizes, in = x.sizes();
    double scale = mean ? 1.0 / double(L.red_numel) : 1.0;
    const char* node_name = dims_in.empty() ? (mean ? "MeanBackward0" : "SumBackward0") : (mean ? "MeanBackward1" : "SumBackward1");
    auto node = make_node(node_name, {&x}, [=](autograd::Node&, TensorList&& g) {
      Tensor r = expand_back(g[0], keep, in);
      return TensorList{scale == 1.0 ? r : r * scale};
    });
    set_history(out, std::move(node));
  }
  return out;
}

struct Welford {
  double n = 0, mean = 0, m2 = 0;
  void add(double v) {
    n += 1;
    double d = v - mean;
    mean += d / n;
    m2 += d * (v - mean);
  }
  void merge(const Welford& o) {
    if (o.n == 0) return;
    if (n == 0) {
      *this = o;
      return;
    }
    double total = n + o.n, d = o.mean - mean;
    mean += d * o.n / total;
    m2 += o.m2 + d * d * n * o.n / total;
    n = total;
  }
};

Tensor var_impl(const Tensor& x, const Shape& dims_in, double correction, bool keepdim, bool take_sqrt) {
  const char* name = take_sqrt ? "std" : "var";
  detail::check_defined(x, name);
  NNKIT_CHECK(x.is_floating_point(), "[", name, "] expects a floating-point tensor, got ", x.dtype());
  Shape dims = dims_or_all(x, dims_in, name);
  Layout L = make_layout(x, dims);
  Tensor out;
  if (x.is_cuda())
    out = cuda_reduce(x, dims, L, keepdim, x.dtype(), take_sqrt ? detail::RowReduce::Std : detail::RowReduce::Var,
                      correction);
  else detail::dispatch<detail::kFloatingTypes>(x.dtype(), name, [&]<typename T>() {
    auto acc = reduce_cpu<T, Welford>(
        x, L, Welford{}, [](Welford& a, T v, int64_t) { a.add(double(v)); },
        [](Welford& a, const Welford& b) { a.merge(b); });
    out = finish_output<T, Welford>(L, keepdim, x.dtype(), acc, [&](const Welford& w) {
      double denom = std::max(0.0, w.n - correction);
      double v = w.m2 / denom;
      return static_cast<T>(take_sqrt ? std::sqrt(v) : v);
    });
  });
  if (needs_grad(x)) {
    Shape keep = L.keep_sizes, in = x.sizes();
    double denom = std::max(0.0, double(L.red_numel) - correction);
    auto node = make_node(take_sqrt ? "StdBackward0" : "VarBackward0", {&x},
                          [=, sx = SavedTensor(x), so = SavedTensor(out, true)](autograd::Node& self, TensorList&& g) {
                            auto me = autograd::running_node(self);
                            Tensor v = sx.unpack(me);
                            Tensor centered = v - v.mean(dims, true);
                            Tensor gg = g[0].reshape(keep);
                            if (take_sqrt) return TensorList{gg * centered / (so.unpack(me).reshape(keep) * denom)};
                            return TensorList{gg * centered * (2.0 / denom)};
                          });
    set_history(out, std::move(node));
  }
  return out;
}


// Value and index of the max (or min) over the reduced elements; NaN wins, as in PyTorch.
template <typename T>
struct Best {
  T value;
  int64_t index = -1;
};

template <typename T>
std::vector<Best<T>> best_cpu(const Tensor& x, const Layout& L, bool is_max) {
  Best<T> init{is_max ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max(), -1};
  if constexpr (std::is_floating_point_v<T>)
    init.value = is_max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  auto better = [is_max](const Best<T>& a, T v, int64_t) {
    if (a.index < 0) return true;
    if (detail::is_nan_value(a.value)) return false;
    if (detail::is_nan_value(v)) return true;
    return is_max ? v > a.value : v < a.value;
  };
  return reduce_cpu<T, Best<T>>(
      x, L, init,
      [&](Best<T>& a, T v, int64_t i) {
        if (better(a, v, i)) a = {v, i};
      },
      [&](Best<T>& a, const Best<T>& b) {
        if (b.index >= 0 && (a.index < 0 || better(a, b.value, b.index) ||
                             (!detail::is_nan_value(a.value) && a.value == b.value && b.index < a.index)))
          a = b;
      });
}

Tensor extreme_all_dims(const Tensor& x, const Shape& dims_in, bool keepdim, bool is_max, const char* name) {
  detail::check_defined(x, name);
  Shape dims = dims_or_all(x, dims_in, name);
  Layout L = make_layout(x, dims);
  NNKIT_CHECK(L.red_numel > 0 || L.out_numel == 0, "[", name,
              "] expected reduction dims to have nonzero size (the operation has no identity)");
  Tensor out;
  if (x.is_cuda())
    out = cuda_reduce(x, dims, L, keepdim, x.dtype(), is_max ? detail::RowReduce::Max : detail::RowReduce::Min);
  else detail::dispatch<detail::kAllTypes>(x.dtype(), name, [&]<typename T>() {
    auto acc = best_cpu<T>(x, L, is_max);
    out = finish_output<T, Best<T>>(L, keepdim, x.dtype(), acc, [](const Best<T>& b) { return b.value; });
  });
  if (needs_grad(x)) {
    Shape keep = L.keep_sizes, in = x.sizes();
    bool all = std::string_view(name) == "max" || std::string_view(name) == "min";
    const char* node_name = all ? (is_max ? "MaxBackward1" : "MinBackward1") : (is_max ? "AmaxBackward0" : "AminBackward0");
    auto node = make_node(node_name, {&x},
                          [=, sx = SavedTensor(x), so = SavedTensor(out, true)](autograd::Node& self, TensorList&& g) {
                            auto me = autograd::running_node(self);
                            // Ties share the gradient evenly, as in PyTorch.
                            Tensor mask = (sx.unpack(me) == so.unpack(me).reshape(keep)).to(g[0].dtype());
                            Tensor count = mask.sum(dims, true);
                            return TensorList{g[0].reshape(keep) * mask / count};
                          });
    set_history(out, std::move(node));
  }
  return out;
}

std::tuple<Tensor, Tensor> extreme_dim(const Tensor& x, int64_t dim, bool keepdim, bool is_max, bool want_values) {
  const char* name = is_max ? (want_values ? "max" : "argmax") : (want_values ? "min" : "argmin");
  detail::check_defined(x, name);
  int64_t d = detail::wrap_dim(dim, x.dim(), name);
  Layout L = make_layout(x, x.dim() == 0 ? Shape() : Shape{d});
  NNKIT_CHECK(L.red_numel > 0, "[", name, "] cannot reduce over a zero-size dimension");
  Tensor values, indices;
  if (x.is_cuda()) {
    Shape dims = x.dim() == 0 ? Shape() : Shape{d};
    const Shape& shape = keepdim ? L.keep_sizes : L.out_sizes;
    if (want_values) values = detail::empty_contig(shape, x.dtype(), x.device());
    indices = detail::empty_contig(shape, kInt64, x.device());
    cuda_detail::best_rows(values, indices, rows_of(x, dims, L), is_max);
  } else detail::dispatch<detail::kAllTypes>(x.dtype(), name, [&]<typename T>() {
    auto acc = best_cpu<T>(x, L, is_max);
    if (want_values)
      values = finish_output<T, Best<T>>(L, keepdim, x.dtype(), acc, [](const Best<T>& b) { return b.value; });
    indices = finish_output<int64_t, Best<T>>(L, keepdim, kInt64, acc, [](const Best<T>& b) { return b.index; });
  });
  if (want_values && needs_grad(x)) {
    Shape in = x.sizes();
    int64_t nd = x.dim();
    auto node = make_node(is_max ? "MaxBackward0" : "MinBackward0", {&x},
                          [=, idx = indices](autograd::Node&, TensorList&& g) {
                            if (nd == 0) return TensorList{g[0]};
                            Tensor gi = keepdim ? g[0] : g[0].unsqueeze(d);
                            Tensor ii = keepdim ? idx : idx.unsqueeze(d);
                            Shape pos_shape = Shape::filled(size_t(nd), 1);
                            pos_shape[size_t(d)] = in[size_t(d)];
                            Tensor pos = arange(in[size_t(d)]).view(pos_shape);
                            return TensorList{where(pos == ii, gi, 0.0).expand(in).contiguous()};
                          });
    set_history(values, std::move(node));
  }
  return {values, indices};
}

}  // namespace

Tensor sum(const Tensor& x) { return sum_impl(x, {}, false, false); }
Tensor sum(const Tensor& x, const Shape& dims, bool keepdim) { return sum_impl(x, dims, keepdim, false); }
Tensor mean(const Tensor& x) { return sum_impl(x, {}, false, true); }
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) { return sum_impl(x, dims, keepdim, true); }
Tensor var(const Tensor& x, const Shape& dims, double correction, bool keepdim) {
  return var_impl(x, dims, correction, keepdim, false);
}
Tensor std(const Tensor& x, const Shape& dims, double correction, bool keepdim) {
  return var_impl(x, dims, correction, keepdim, true);
}
Tensor amax(const Tensor& x, const Shape& dims, bool keepdim) { return extreme_all_dims(x, dims, keepdim, true, "amax"); }
Tensor amin(const Tensor& x, const Shape& dims, bool keepdim) { return extreme_all_dims(x, dims, keepdim, false, "amin"); }

Tensor Tensor::sum() const { return nnkit::sum(*this); }
Tensor Tensor::sum(const Shape& dims, bool keepdim) const { return nnkit::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return nnkit::mean(*this); }
Tensor Tensor::mean(const Shape& dims, bool keepdim) const { return nnkit::mean(*this, dims, keepdim); }
Tensor Tensor::var(double correction) const { return var_impl(*this, {}, correction, false, false); }
Tensor Tensor::var(const Shape& dims, double correction, bool keepdim) const {
  return nnkit::var(*this, dims, correction, keepdim);
}
Tensor Tensor::std(double correction) const { return var_impl(*this, {}, correction, false, true); }
Tensor Tensor::std(const Shape& dims, double correction, bool keepdim) const {
  return nnkit::std(*this, dims, correction, keepdim);
}
Tensor Tensor::max() const { return extreme_all_dims(*this, {}, false, true, "max"); }
Tensor Tensor::min() const { return extreme_all_dims(*this, {}, false, false, "min"); }
std::tuple<Tensor, Tensor> Tensor::max(int64_t dim, bool keepdim) const { return extreme_dim(*this, dim, keepdim, true, true); }
std::tuple<Tensor, Tensor> Tensor::min(int64_t dim, bool keepdim) const { return extreme_dim(*this, dim, keepdim, false, true); }
Tensor Tensor::argmax() const { return std::get<1>(extreme_dim(reshape({-1}), 0, false, true, false)); }
Tensor Tensor::argmax(int64_t dim, bool keepdim) const { return std::get<1>(extreme_dim(*this, dim, keepdim, true, false)); }
Tensor Tensor::argmin() const { return std::get<1>(extreme_dim(reshape({-1}), 0, false, false, false)); }
Tensor Tensor::argmin(int64_t dim, bool keepdim) const { return std::get<1>(extreme_dim(*this, dim, keepdim, false, false)); }
Tensor Tensor::amax(const Shape& dims, bool keepdim) const { return nnkit::amax(*this, dims, keepdim); }
Tensor Tensor::amin(const Shape& dims, bool keepdim) const { return nnkit::amin(*this, dims, keepdim); }

Tensor sum_to(const Tensor& x, const Shape& sizes) {
  if (x.sizes() == sizes) return x;
  int64_t lead = x.dim() - int64_t(sizes.size());
  NNKIT_CHECK(lead >= 0, "[sum_to] cannot reduce shape ", x.sizes(), " to ", sizes);
  Shape dims;
  for (int64_t i = 0; i < lead; ++i) dims.push_back(i);
  for (size_t i = 0; i < sizes.size(); ++i) {
    int64_t have = x.size(lead + int64_t(i));
    if (sizes[i] == 1 && have != 1) dims.push_back(lead + int64_t(i));
    else
      NNKIT_CHECK(sizes[i] == have, "[sum_to] cannot reduce shape ", x.sizes(), " to ", sizes);
  }
  if (dims.empty()) return x.view(sizes);
  return x.sum(dims, true).view(sizes);
}

}  // namespace nnkit
