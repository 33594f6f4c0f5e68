// The CPU backend's reductions (mirrors cuda/reduce.cu): sum, mean, var/std (Welford), max/min
// with their first index, over any set of dims of a strided tensor, split over threads by
// outputs or, for few long reductions, within each; and softmax along one dim.
#include <omp.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/dispatch.h"
#include "cpu/backend.h"
#include "cpu/loops.h"
#include "ops/scalar_math.h"

namespace nnkit::detail {

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

// Writes map(acc[i]) into the contiguous out.
template <typename R, typename Acc, typename Map>
void write_output(const Tensor& out, const std::vector<Acc>& acc, Map map) {
  R* p = out.data_ptr<R>();
  for (size_t i = 0; i < acc.size(); ++i) p[i] = map(acc[i]);
}

template <typename T>
using AccOf = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

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
    if (is_nan_value(a.value)) return false;
    if (is_nan_value(v)) return true;
    return is_max ? v > a.value : v < a.value;
  };
  return reduce_cpu<T, Best<T>>(
      x, L, init,
      [&](Best<T>& a, T v, int64_t i) {
        if (better(a, v, i)) a = {v, i};
      },
      [&](Best<T>& a, const Best<T>& b) {
        if (b.index >= 0 && (a.index < 0 || better(a, b.value, b.index) ||
                             (!is_nan_value(a.value) && a.value == b.value && b.index < a.index)))
          a = b;
      });
}

template <typename T>
void softmax_kernel(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  cpu::parallel_for(outer * inner, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(n, 1)),
                    [&](int64_t b, int64_t e) {
                      for (int64_t r = b; r < e; ++r) {
                        int64_t o = r / inner, i = r % inner;
                        const T* xp = x + o * n * inner + i;
                        T* yp = y + o * n * inner + i;
                        T mx = -std::numeric_limits<T>::infinity();
                        for (int64_t k = 0; k < n; ++k) mx = std::max(mx, xp[k * inner]);
                        if (std::isinf(mx) && mx < 0) mx = 0;
                        double sum = 0;
                        for (int64_t k = 0; k < n; ++k) sum += std::exp(double(xp[k * inner] - mx));
                        if (log) {
                          T lse = T(std::log(sum)) + mx;
                          for (int64_t k = 0; k < n; ++k) yp[k * inner] = xp[k * inner] - lse;
                        } else {
                          double inv = 1.0 / sum;
                          for (int64_t k = 0; k < n; ++k) yp[k * inner] = T(std::exp(double(xp[k * inner] - mx)) * inv);
                        }
                      }
                    });
}

}  // namespace

void CpuBackend::reduce(const Tensor& out, const Tensor& x, const Shape& dims, Reduce op, double correction) const {
  Layout L = make_layout(x, dims);
  switch (op) {
    case Reduce::Sum:
    case Reduce::Mean:
      dispatch<kAllTypes>(x.dtype(), op == Reduce::Mean ? "mean" : "sum", [&]<typename T>() {
        using Acc = AccOf<T>;
        auto acc = reduce_cpu<T, Acc>(
            x, L, Acc(0), [](Acc& a, T v, int64_t) { a += Acc(v); }, [](Acc& a, const Acc& b) { a += b; });
        const double count = double(L.red_numel);
        const bool mean = op == Reduce::Mean;
        dispatch<kAllTypes>(out.dtype(), "sum", [&]<typename R>() {
          write_output<R, Acc>(out, acc, [&](Acc a) { return mean ? static_cast<R>(double(a) / count) : static_cast<R>(a); });
        });
      });
      break;
    case Reduce::Var:
    case Reduce::Std:
      dispatch<kFloatingTypes>(x.dtype(), op == Reduce::Std ? "std" : "var", [&]<typename T>() {
        auto acc = reduce_cpu<T, Welford>(
            x, L, Welford{}, [](Welford& a, T v, int64_t) { a.add(double(v)); },
            [](Welford& a, const Welford& b) { a.merge(b); });
        const bool take_sqrt = op == Reduce::Std;
        write_output<T, Welford>(out, acc, [&](const Welford& w) {
          double denom = std::max(0.0, w.n - correction);
          double v = w.m2 / denom;
          return static_cast<T>(take_sqrt ? std::sqrt(v) : v);
        });
      });
      break;
    case Reduce::Max:
    case Reduce::Min:
      dispatch<kAllTypes>(x.dtype(), op == Reduce::Max ? "max" : "min", [&]<typename T>() {
        auto acc = best_cpu<T>(x, L, op == Reduce::Max);
        write_output<T, Best<T>>(out, acc, [](const Best<T>& b) { return b.value; });
      });
      break;
  }
}

void CpuBackend::best(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t d, bool is_max) const {
  Layout L = make_layout(x, x.dim() == 0 ? Shape() : Shape{d});
  dispatch<kAllTypes>(x.dtype(), is_max ? "max" : "min", [&]<typename T>() {
    auto acc = best_cpu<T>(x, L, is_max);
    if (values.defined()) write_output<T, Best<T>>(values, acc, [](const Best<T>& b) { return b.value; });
    write_output<int64_t, Best<T>>(indices, acc, [](const Best<T>& b) { return b.index; });
  });
}

void CpuBackend::softmax(const Tensor& out, const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log) const {
  dispatch<kFloatingTypes>(x.dtype(), log ? "log_softmax" : "softmax", [&]<typename T>() {
    softmax_kernel<T>(x.data_ptr<T>(), out.data_ptr<T>(), outer, n, inner, log);
  });
}

}  // namespace nnkit::detail
