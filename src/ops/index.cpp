// Indexing ops: index_select / index_add and gather / scatter_add (each the other's gradient,
// so higher-order gradients work), flip, and pad (constant, reflect, replicate, circular),
// the last two composed from differentiable ops. The four kernels are the backend's (they check
// the index values).
#include <cstring>

#include "autograd/function.h"
#include "ops/common.h"
#include "backend/backend.h"

namespace nnkit {

using autograd::make_node;
using autograd::needs_grad;
using autograd::set_history;

namespace {

void check_index(const Tensor& index, const char* op) {
  detail::check_defined(index, op, "index");
  NNKIT_CHECK(index.dtype() == kInt64, "[", op, "] expects an int64 index tensor, got ", index.dtype());
}

// [outer, n, inner] view of a contiguous tensor around dimension d.
struct Split {
  int64_t outer = 1, n = 1, inner = 1;
};
Split split(const Shape& s, int64_t d) {
  Split r;
  for (int64_t i = 0; i < int64_t(s.size()); ++i) {
    if (i < d) r.outer *= s[size_t(i)];
    else if (i == d) r.n = s[size_t(i)];
    else r.inner *= s[size_t(i)];
  }
  return r;
}

}  // namespace

Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& source);

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_defined(x, "index_select");
  check_index(index, "index_select");
  NNKIT_CHECK(index.dim() <= 1, "[index_select] index must be 0- or 1-dimensional, got shape ", index.sizes());
  detail::check_same_device(x, index, "index_select");
  const int64_t d = detail::wrap_dim(dim, x.dim(), "index_select");
  Tensor xc = x.contiguous();
  Tensor idx = index.contiguous().view({-1});
  Shape out_sizes = x.sizes();
  if (x.dim() > 0) out_sizes[size_t(d)] = idx.numel();
  Tensor out = detail::empty_contig(out_sizes, x.dtype(), x.device());
  const Split s = split(x.sizes(), d);
  if (out.numel() > 0) detail::backend(x).index_select(out, xc, idx, s.outer, s.n, s.inner, d);
  if (needs_grad(x)) {
    Shape xs = x.sizes();
    Tensor saved_index = idx;
    set_history(out, make_node("IndexSelectBackward0", {&x}, [xs, d, saved_index](autograd::Node&, TensorList&& g) {
      return TensorList{index_add(zeros(xs, {.dtype = g[0].dtype(), .device = g[0].device()}), d, saved_index, g[0])};
    }));
  }
  return out;
}

Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& source) {
  detail::check_defined(base, "index_add");
  detail::check_defined(source, "index_add", "source");
  check_index(index, "index_add");
  detail::check_same_device(base, index, "index_add");
  detail::check_same_device(base, source, "index_add");
  NNKIT_CHECK(base.dtype() == source.dtype(), "[index_add] base and source must have the same dtype, got ",
              base.dtype(), " and ", source.dtype());
  const int64_t d = detail::wrap_dim(dim, base.dim(), "index_add");
  Tensor idx = index.contiguous().view({-1});
  Shape expect = base.sizes();
  if (base.dim() > 0) expect[size_t(d)] = idx.numel();
  NNKIT_CHECK(source.sizes() == expect, "[index_add] source has shape ", source.sizes(), " but shape ", expect,
              " was expected (base ", base.sizes(), ", ", idx.numel(), " indices along dimension ", d, ")");
  Tensor out = base.detach().contiguous().clone();
  Tensor src = source.detach().contiguous();
  const Split s = split(base.sizes(), d);
  const int64_t k = idx.numel();
  if (base.dtype() == kBool) detail::throw_unsupported_dtype("index_add", kBool, detail::kNumericTypes);
  if (k > 0) detail::backend(base).index_add(out, idx, src, s.outer, s.n, s.inner, d);
  if (needs_grad(base, source)) {
    Tensor saved_index = idx;
    set_history(out, make_node("IndexAddBackward0", {&base, &source}, [d, saved_index](autograd::Node&, TensorList&& g) {
      return TensorList{g[0], index_select(g[0], d, saved_index)};
    }));
  }
  return out;
}

Tensor scatter_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& source);

namespace {
void check_gather_shapes(const Shape& xs, const Shape& is, int64_t d, const char* op) {
  NNKIT_CHECK(xs.size() == is.size(), "[", op, "] index must have as many dimensions as the input (", xs.size(),
              "), got shape ", is);
  for (size_t k = 0; k < xs.size(); ++k)
    NNKIT_CHECK(int64_t(k) == d || is[k] <= xs[k], "[", op, "] index has size ", is[k], " in dimension ", k,
                " but the input only ", xs[k]);
}
}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_defined(x, "gather");
  check_index(index, "gather");
  detail::check_same_device(x, index, "gather");
  const int64_t d = detail::wrap_dim(dim, x.dim(), "gather");
  check_gather_shapes(x.sizes(), index.sizes(), d, "gather");
  Tensor xc = x.contiguous(), idx = index.contiguous();
  Tensor out = detail::empty_contig(index.sizes(), x.dtype(), x.device());
  if (out.numel() > 0) detail::backend(x).gather(out, xc, idx, d);
  if (needs_grad(x)) {
    Shape xs = x.sizes();
    set_history(out, make_node("GatherBackward0", {&x}, [xs, d, idx](autograd::Node&, TensorList&& g) {
      return TensorList{scatter_add(zeros(xs, {.dtype = g[0].dtype(), .device = g[0].device()}), d, idx, g[0])};
    }));
  }
  return out;
}

Tensor scatter_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& source) {
  detail::check_defined(base, "scatter_add");
  detail::check_defined(source, "scatter_add", "source");
  check_index(index, "scatter_add");
  detail::check_same_device(base, index, "scatter_add");
  detail::check_same_device(base, source, "scatter_add");
  NNKIT_CHECK(base.dtype() == source.dtype(), "[scatter_add] base and source must have the same dtype, got ",
              base.dtype(), " and ", source.dtype());
  const int64_t d = detail::wrap_dim(dim, base.dim(), "scatter_add");
  check_gather_shapes(base.sizes(), index.sizes(), d, "scatter_add");
  NNKIT_CHECK(source.sizes() == index.sizes(), "[scatter_add] source has shape ", source.sizes(),
              " but the index has shape ", index.sizes());
  Tensor out = base.detach().contiguous().clone();
  Tensor src = source.detach().contiguous(), idx = index.contiguous();
  if (base.dtype() == kBool) detail::throw_unsupported_dtype("scatter_add", kBool, detail::kNumericTypes);
  if (idx.numel() > 0) detail::backend(base).scatter_add(out, idx, src, d);
  if (needs_grad(base, source)) {
    set_history(out, make_node("ScatterAddBackward0", {&base, &source}, [d, idx](autograd::Node&, TensorList&& g) {
      return TensorList{g[0], gather(g[0], d, idx)};
    }));
  }
  return out;
}

Tensor flip(const Tensor& x, const Shape& dims) {
  detail::check_defined(x, "flip");
  Shape nd = detail::normalize_dims(dims, x.dim(), "flip");
  Tensor out = x;
  for (int64_t d : nd) {
    const int64_t n = x.size(d);
    out = index_select(out, d, arange(n - 1, int64_t(-1), int64_t(-1), {.dtype = kInt64, .device = x.device()}));
  }
  return nd.empty() ? x.clone() : out;
}

namespace {
Shape with_size(Shape s, int64_t d, int64_t n) {
  s[size_t(d)] = n;
  return s;
}
}  // namespace

Tensor pad(const Tensor& x, const Shape& pads, std::string_view mode, double value) {
  detail::check_defined(x, "pad");
  NNKIT_CHECK(pads.size() % 2 == 0, "[pad] padding length must be even (pairs of before/after), got ", pads.size());
  const int64_t npairs = int64_t(pads.size()) / 2;
  NNKIT_CHECK(npairs <= x.dim(), "[pad] padding of ", npairs, " dimensions for a tensor with ", x.dim());
  NNKIT_CHECK(mode == "constant" || mode == "reflect" || mode == "replicate" || mode == "circular",
              "[pad] unknown mode '", mode, "' (expected constant, reflect, replicate or circular)");
  Tensor out = x;
  // pads = (last_before, last_after, second_last_before, ...), as in torch.nn.functional.pad.
  for (int64_t k = 0; k < npairs; ++k) {
    const int64_t d = x.dim() - 1 - k;
    int64_t before = pads[size_t(2 * k)], after = pads[size_t(2 * k + 1)];
    const int64_t n = out.size(d);
    if (mode == "constant") {
      if (before < 0) out = out.narrow(d, -before, n + before), before = 0;
      if (after < 0) out = out.narrow(d, 0, out.size(d) + after), after = 0;
      TensorList parts;
      Shape s = out.sizes();
      if (before > 0) {
        s[size_t(d)] = before;
        parts.push_back(full(s, value, {.dtype = x.dtype(), .device = x.device()}));
      }
      parts.push_back(out);
      if (after > 0) {
        s[size_t(d)] = after;
        parts.push_back(full(s, value, {.dtype = x.dtype(), .device = x.device()}));
      }
      if (parts.size() > 1) out = cat(parts, d);
      continue;
    }
    NNKIT_CHECK(before >= 0 && after >= 0, "[pad] negative padding is only supported in constant mode");
    if (mode == "reflect")
      NNKIT_CHECK(before < n && after < n, "[pad] reflect padding (", before, ", ", after,
                  ") must be smaller than the input size ", n, " in dimension ", d);
    if (mode == "circular")
      NNKIT_CHECK(before <= n && after <= n, "[pad] circular padding (", before, ", ", after,
                  ") must not exceed the input size ", n, " in dimension ", d);
    TensorList parts;
    if (before > 0) {
      if (mode == "reflect") parts.push_back(flip(out.narrow(d, 1, before), {d}));
      else if (mode == "replicate") parts.push_back(out.narrow(d, 0, 1).expand(with_size(out.sizes(), d, before)).contiguous());
      else parts.push_back(out.narrow(d, n - before, before));
    }
    parts.push_back(out);
    if (after > 0) {
      if (mode == "reflect") parts.push_back(flip(out.narrow(d, n - 1 - after, after), {d}));
      else if (mode == "replicate") parts.push_back(out.narrow(d, n - 1, 1).expand(with_size(out.sizes(), d, after)).contiguous());
      else parts.push_back(out.narrow(d, 0, after));
    }
    if (parts.size() > 1) out = cat(parts, d);
  }
  return out;
}

}  // namespace nnkit
