#pragma once
// Private: CPU elementwise loops over N operands with arbitrary strides. Dimensions are
// coalesced first; contiguous operands take a flat loop the compiler vectorizes; large
// tensors are split across OpenMP threads.
#include <omp.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <utility>

#include "nnkit/core/tensor.h"

namespace nnkit::cpu {

inline constexpr int64_t kParallelGrain = 32768;

// Strides (in elements) of `t` seen with the broadcast shape `out_sizes`.
inline Shape broadcast_strides(const Tensor& t, const Shape& out_sizes) {
  Shape s = Shape::filled(out_sizes.size(), 0);
  const auto& ts = t.sizes();
  const auto& st = t.strides();
  size_t off = out_sizes.size() - ts.size();
  for (size_t i = 0; i < ts.size(); ++i) s[off + i] = ts[i] == 1 ? 0 : st[i];
  return s;
}

template <size_t N>
struct LoopPlan {
  Shape sizes;                    // coalesced sizes
  std::array<Shape, N> strides;   // per operand, in elements
  int64_t numel = 0;
};

template <size_t N>
LoopPlan<N> make_plan(const Shape& sizes, std::array<Shape, N> strides) {
  LoopPlan<N> p;
  p.numel = sizes.numel();
  // Drop size-1 dims, then merge dim i into i+1 when every operand is contiguous across them.
  Shape sz;
  std::array<Shape, N> st;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    sz.push_back(sizes[d]);
    for (size_t k = 0; k < N; ++k) st[k].push_back(strides[k][d]);
  }
  Shape msz;
  std::array<Shape, N> mst;
  for (size_t d = 0; d < sz.size(); ++d) {
    if (!msz.empty()) {
      bool ok = true;
      size_t last = msz.size() - 1;
      for (size_t k = 0; k < N; ++k)
        if (mst[k][last] != st[k][d] * sz[d]) ok = false;
      if (ok) {
        msz[last] *= sz[d];
        for (size_t k = 0; k < N; ++k) mst[k][last] = st[k][d];
        continue;
      }
    }
    msz.push_back(sz[d]);
    for (size_t k = 0; k < N; ++k) mst[k].push_back(st[k][d]);
  }
  p.sizes = std::move(msz);
  p.strides = std::move(mst);
  return p;
}

// Calls inner(ptrs, inner_strides, n) for each innermost run of the flat range [begin, end).
// ptrs are char* per operand; strides are in bytes.
template <size_t N, typename Inner>
void run_range(const LoopPlan<N>& p, const std::array<char*, N>& base, const std::array<size_t, N>& elem,
               int64_t begin, int64_t end, Inner&& inner) {
  const size_t nd = p.sizes.size();
  if (nd == 0) {
    std::array<int64_t, N> s{};
    inner(base, s, int64_t(1));
    return;
  }
  const int64_t inner_size = p.sizes[nd - 1];
  std::array<int64_t, N> inner_stride;
  for (size_t k = 0; k < N; ++k) inner_stride[k] = p.strides[k][nd - 1] * int64_t(elem[k]);
  // Decompose begin into a multi-index.
  int64_t idx[16] = {0};
  int64_t rem = begin;
  for (size_t d = nd; d-- > 0;) {
    idx[d] = rem % p.sizes[d];
    rem /= p.sizes[d];
  }
  int64_t pos = begin;
  while (pos < end) {
    std::array<char*, N> ptrs;
    for (size_t k = 0; k < N; ++k) {
      int64_t off = 0;
      for (size_t d = 0; d < nd; ++d) off += idx[d] * p.strides[k][d];
      ptrs[k] = base[k] + off * int64_t(elem[k]);
    }
    int64_t n = std::min(inner_size - idx[nd - 1], end - pos);
    inner(ptrs, inner_stride, n);
    pos += n;
    idx[nd - 1] += n;
    for (size_t d = nd - 1; d > 0 && idx[d] >= p.sizes[d]; --d) {
      idx[d] = 0;
      ++idx[d - 1];
    }
  }
}

template <typename F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= grain || omp_in_parallel() || omp_get_max_threads() == 1) {
    f(int64_t(0), n);
    return;
  }
#pragma omp parallel
  {
    int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t chunk = (n + nt - 1) / nt;
    int64_t b = t * chunk, e = std::min(n, b + chunk);
    if (b < e) f(b, e);
  }
}

// out[i] = f(in0[i], in1[i], ...) over the broadcast shape of `out` (which must already have
// that shape). Out and In are the element types.
template <typename Out, typename... In, typename F>
void kernel(const Tensor& out, const std::array<const Tensor*, sizeof...(In)>& ins, F f) {
  constexpr size_t N = sizeof...(In) + 1;
  const Shape& sizes = out.sizes();
  // Fast path, the common case: every operand contiguous with the output's shape. No loop
  // plan, no stride vectors; this is most of a tiny op's cost otherwise.
  bool flat = out.is_contiguous();
  for (size_t k = 0; k + 1 < N && flat; ++k) flat = ins[k]->is_contiguous() && ins[k]->sizes() == sizes;
  if (flat) {
    const int64_t n = out.numel();
    Out* o = static_cast<Out*>(out.raw_data());
    [&]<size_t... I>(std::index_sequence<I...>) {
      std::tuple<const In*...> in{static_cast<const In*>(ins[I]->raw_data())...};
      parallel_for(n, kParallelGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) o[i] = f(std::get<I>(in)[i]...);
      });
    }(std::index_sequence_for<In...>{});
    return;
  }
  std::array<Shape, N> strides;
  strides[0] = out.strides();
  for (size_t k = 1; k < N; ++k) strides[k] = broadcast_strides(*ins[k - 1], sizes);
  std::array<char*, N> base;
  base[0] = static_cast<char*>(out.raw_data());
  for (size_t k = 1; k < N; ++k) base[k] = static_cast<char*>(ins[k - 1]->raw_data());
  std::array<size_t, N> elem{sizeof(Out), sizeof(In)...};
  auto plan = make_plan<N>(sizes, strides);
  if (plan.numel == 0) return;
  // A run where every operand is contiguous (stride 1) or broadcast (stride 0).
  auto inner = [&f](const std::array<char*, N>& ptrs, const std::array<int64_t, N>& st, int64_t n) {
    Out* o = reinterpret_cast<Out*>(ptrs[0]);
    bool contig = st[0] == int64_t(sizeof(Out));
    bool all_contig = contig;
    [&]<size_t... I>(std::index_sequence<I...>) {
      all_contig = all_contig && ((st[I + 1] == int64_t(sizeof(In))) && ...);
    }(std::index_sequence_for<In...>{});
    if (all_contig) {
      [&]<size_t... I>(std::index_sequence<I...>) {
        std::tuple<const In*...> in{reinterpret_cast<const In*>(ptrs[I + 1])...};
        for (int64_t i = 0; i < n; ++i) o[i] = f(std::get<I>(in)[i]...);
      }(std::index_sequence_for<In...>{});
      return;
    }
    // Contiguous output, inputs contiguous or broadcast along the run (stride 0, e.g. the
    // gradient of a sum): each broadcast value is repeated into a short buffer so that the
    // run still goes through a plain vectorizable loop, chunk by chunk.
    bool bcast = contig;
    [&]<size_t... I>(std::index_sequence<I...>) {
      bcast = bcast && (((st[I + 1] == int64_t(sizeof(In))) || st[I + 1] == 0) && ...);
    }(std::index_sequence_for<In...>{});
    if (bcast && n >= 64) {
      constexpr int64_t kChunk = 256;
      [&]<size_t... I>(std::index_sequence<I...>) {
        std::tuple<std::array<In, kChunk>...> bufs;
        ((st[I + 1] == 0 ? std::get<I>(bufs).fill(*reinterpret_cast<const In*>(ptrs[I + 1])) : void()), ...);
        for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
          const int64_t m = std::min(kChunk, n - i0);
          std::tuple<const In*...> in{(st[I + 1] == 0 ? std::get<I>(bufs).data()
                                                      : reinterpret_cast<const In*>(ptrs[I + 1]) + i0)...};
          Out* oc = o + i0;
          for (int64_t i = 0; i < m; ++i) oc[i] = f(std::get<I>(in)[i]...);
        }
      }(std::index_sequence_for<In...>{});
      return;
    }
    [&]<size_t... I>(std::index_sequence<I...>) {
      std::array<char*, N> p = ptrs;
      for (int64_t i = 0; i < n; ++i) {
        *reinterpret_cast<Out*>(p[0]) = f(*reinterpret_cast<const In*>(p[I + 1])...);
        for (size_t k = 0; k < N; ++k) p[k] += st[k];
      }
    }(std::index_sequence_for<In...>{});
  };
  parallel_for(plan.numel, kParallelGrain, [&](int64_t b, int64_t e) { run_range<N>(plan, base, elem, b, e, inner); });
}

}  // namespace nnkit::cpu
