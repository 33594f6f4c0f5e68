// View ops: new TensorImpls over the same Storage, and their gradient rules.
#include <numeric>

#include "autograd/function.h"
#include "ops/common.h"

namespace nnkit {

using autograd::make_node;
using autograd::needs_grad;
using autograd::set_history;
using detail::wrap_dim;

namespace {

Tensor make_view(const Tensor& self, Shape sizes, Shape strides, int64_t offset) {
  return Tensor(make_intrusive<TensorImpl>(self.impl()->storage(), std::move(sizes), std::move(strides), offset,
                                           self.dtype()));
}

// Attaches a view's gradient rule (a callable mapping grad → grad of self).
template <typename F>
void view_history(const Tensor& out, const Tensor& self, std::string_view name, F backward) {
  if (!needs_grad(self)) return;
  auto node = make_node(name, {&self}, [backward = std::move(backward)](autograd::Node&, TensorList&& g) {
    return TensorList{backward(g[0])};
  });
  set_history(out, std::move(node), 0, /*is_view=*/true);
}

Shape infer_size(const Shape& shape, int64_t numel, std::string_view op) {
  Shape res = shape;
  int64_t known = 1;
  int64_t infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      NNKIT_CHECK(infer < 0, "[", op, "] only one dimension can be inferred (-1) in shape ", shape);
      infer = int64_t(i);
    } else {
      NNKIT_CHECK(shape[i] >= 0, "[", op, "] invalid shape dimension ", shape[i], " in ", shape);
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    NNKIT_CHECK(known != 0 && numel % known == 0, "[", op, "] shape ", shape, " is invalid for input of size ", numel);
    res[size_t(infer)] = numel / known;
  } else {
    NNKIT_CHECK(known == numel, "[", op, "] shape ", shape, " is invalid for input of size ", numel);
  }
  return res;
}

// Strides for viewing (old sizes, old strides) as new sizes without copying, if possible
// (the algorithm of PyTorch's computeStride).
std::optional<Shape> compute_view_strides(const Shape& oldshape, const Shape& oldstride, const Shape& newshape) {
  if (oldshape.empty()) return Shape::filled(newshape.size(), 1);
  int64_t numel = oldshape.numel();
  if (numel == 0 && oldshape == newshape) return oldstride;
  Shape newstride = Shape::filled(newshape.size(), 1);
  if (numel == 0) return contiguous_strides(newshape);
  int64_t view_d = int64_t(newshape.size()) - 1;
  int64_t chunk_base_stride = oldstride.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t tensor_d = int64_t(oldshape.size()) - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= oldshape[size_t(tensor_d)];
    if (tensor_d == 0 || (oldshape[size_t(tensor_d - 1)] != 1 &&
                          oldstride[size_t(tensor_d - 1)] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || newshape[size_t(view_d)] == 1)) {
        newstride[size_t(view_d)] = view_numel * chunk_base_stride;
        view_numel *= newshape[size_t(view_d)];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (tensor_d > 0) {
        chunk_base_stride = oldstride[size_t(tensor_d - 1)];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return newstride;
}

Tensor view_impl(const Tensor& self, const Shape& sizes, std::string_view op, bool allow_copy) {
  Shape shape = infer_size(sizes, self.numel(), op);
  auto strides = compute_view_strides(self.sizes(), self.strides(), shape);
  if (!strides) {
    NNKIT_CHECK(allow_copy, "[", op, "] view size ", sizes,
                " is not compatible with the input tensor's size and stride (at least one dimension spans "
                "across two contiguous subspaces); use .reshape(...) instead");
    return self.contiguous().view(shape);
  }
  Tensor out = make_view(self, shape, *strides, self.storage_offset());
  Shape in_sizes = self.sizes();
  view_history(out, self, allow_copy ? "ReshapeAliasBackward0" : "ViewBackward0",
               [in_sizes](const Tensor& g) { return g.reshape(in_sizes); });
  return out;
}

}  // namespace

Tensor Tensor::view(const Shape& sizes) const { return view_impl(*this, sizes, "view", false); }
Tensor Tensor::reshape(const Shape& sizes) const { return view_impl(*this, sizes, "reshape", true); }

Tensor Tensor::as_strided(const Shape& sizes, const Shape& strides, std::optional<int64_t> offset) const {
  NNKIT_CHECK(sizes.size() == strides.size(), "[as_strided] got ", sizes.size(), " sizes but ", strides.size(),
              " strides");
  NNKIT_CHECK(!needs_grad(*this), "[as_strided] is not differentiable; call it on a detached tensor");
  int64_t off = offset.value_or(storage_offset());
  int64_t max_index = off;
  for (size_t i = 0; i < sizes.size(); ++i) {
    NNKIT_CHECK(sizes[i] >= 0 && strides[i] >= 0, "[as_strided] negative size or stride");
    if (sizes[i] > 0) max_index += (sizes[i] - 1) * strides[i];
  }
  NNKIT_CHECK(sizes.numel() == 0 || (max_index + 1) * int64_t(element_size()) <= int64_t(impl()->storage()->nbytes()),
              "[as_strided] sizes ", sizes, " and strides ", strides, " at offset ", off,
              " reach past the end of the storage");
  return make_view(*this, sizes, strides, off);
}

Tensor Tensor::permute(const Shape& dims) const {
  int64_t nd = dim();
  NNKIT_CHECK(int64_t(dims.size()) == nd, "[permute] number of dims don't match: tensor has ", nd,
              " dimensions but permutation ", dims, " has ", dims.size());
  Shape sizes_out, strides_out, inverse = Shape::filled(size_t(nd), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], nd, "permute");
    NNKIT_CHECK(inverse[size_t(d)] == -1, "[permute] repeated dim ", d, " in permutation ", dims);
    inverse[size_t(d)] = int64_t(i);
    sizes_out.push_back(sizes()[size_t(d)]);
    strides_out.push_back(strides()[size_t(d)]);
  }
  Tensor out = make_view(*this, sizes_out, strides_out, storage_offset());
  view_history(out, *this, "PermuteBackward0", [inverse](const Tensor& g) { return g.permute(inverse); });
  return out;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  int64_t nd = dim();
  if (nd == 0) return view_impl(*this, sizes(), "transpose", false);
  d0 = wrap_dim(d0, nd, "transpose");
  d1 = wrap_dim(d1, nd, "transpose");
  Shape sz = sizes(), st = strides();
  std::swap(sz[size_t(d0)], sz[size_t(d1)]);
  std::swap(st[size_t(d0)], st[size_t(d1)]);
  Tensor out = make_view(*this, sz, st, storage_offset());
  view_history(out, *this, "TransposeBackward0", [d0, d1](const Tensor& g) { return g.transpose(d0, d1); });
  return out;
}

Tensor Tensor::t() const {
  NNKIT_CHECK(dim() <= 2, "[t] expects a tensor with <= 2 dimensions, but got ", dim(), "D");
  return dim() < 2 ? view_impl(*this, sizes(), "t", false) : transpose(0, 1);
}

namespace {
// The gradient of slice: zeros of the input's shape with grad written into the slice. Itself
// differentiable (its gradient is the slice), so create_graph works through slices.
Tensor slice_backward(const Tensor& grad, const Shape& in_sizes, int64_t dim, int64_t start, int64_t end, int64_t step) {
  Tensor result = zeros(in_sizes, {.dtype = grad.dtype(), .device = grad.device()});
  {
    NoGradGuard g;
    result.slice(dim, start, end, step).copy_(grad);
  }
  if (needs_grad(grad)) {
    auto node = make_node("SliceBackwardBackward0", {&grad}, [dim, start, end, step](autograd::Node&, TensorList&& g) {
      return TensorList{g[0].slice(dim, start, end, step)};
    });
    set_history(result, std::move(node));
  }
  return result;
}
}  // namespace

Tensor Tensor::slice(int64_t d, std::optional<int64_t> start_opt, std::optional<int64_t> end_opt, int64_t step) const {
  NNKIT_CHECK(dim() > 0, "[slice] cannot slice a 0-dim tensor");
  d = wrap_dim(d, dim(), "slice");
  NNKIT_CHECK(step > 0, "[slice] step must be positive, got ", step);
  int64_t n = sizes()[size_t(d)];
  int64_t start = start_opt.value_or(0), end = end_opt.value_or(n);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  int64_t len = (end - start + step - 1) / step;
  Shape sz = sizes(), st = strides();
  sz[size_t(d)] = len;
  st[size_t(d)] = strides()[size_t(d)] * step;
  Tensor out = make_view(*this, sz, st, storage_offset() + start * strides()[size_t(d)]);
  Shape in_sizes = sizes();
  view_history(out, *this, "SliceBackward0", [in_sizes, d, start, end, step](const Tensor& g) {
    return slice_backward(g, in_sizes, d, start, end, step);
  });
  return out;
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  NNKIT_CHECK(dim() > 0, "[narrow] cannot narrow a 0-dim tensor");
  d = wrap_dim(d, dim(), "narrow");
  int64_t n = size(d);
  if (start < 0) start += n;
  NNKIT_CHECK(start >= 0 && length >= 0 && start + length <= n, "[narrow] start (", start, ") + length (", length,
              ") exceeds dimension size (", n, ") of dim ", d);
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  NNKIT_CHECK(dim() > 0, "[select] cannot index a 0-dim tensor");
  d = wrap_dim(d, dim(), "select");
  int64_t n = size(d);
  NNKIT_CHECK(index >= -n && index < n, "[select] index ", index, " is out of bounds for dimension ", d,
              " with size ", n);
  if (index < 0) index += n;
  Shape sz = sizes(), st = strides();
  int64_t off = storage_offset() + index * st[size_t(d)];
  sz.erase(size_t(d));
  st.erase(size_t(d));
  Tensor out = make_view(*this, sz, st, off);
  Shape in_sizes = sizes();
  view_history(out, *this, "SelectBackward0", [in_sizes, d, index](const Tensor& g) {
    return slice_backward(g.unsqueeze(d), in_sizes, d, index, index + 1, 1);
  });
  return out;
}

Tensor Tensor::expand(const Shape& new_sizes) const {
  int64_t nd = dim();
  NNKIT_CHECK(int64_t(new_sizes.size()) >= nd, "[expand] the number of sizes provided (", new_sizes.size(),
              ") must be greater or equal to the number of dimensions in the tensor (", nd, ")");
  size_t off = new_sizes.size() - size_t(nd);
  Shape sz = Shape::filled(new_sizes.size(), 0), st = Shape::filled(new_sizes.size(), 0);
  for (size_t i = 0; i < new_sizes.size(); ++i) {
    int64_t want = new_sizes[i];
    if (i < off) {
      NNKIT_CHECK(want >= 0, "[expand] the expanded size ", want, " is not allowed in a leading, non-existing dimension");
      sz[i] = want;
      st[i] = 0;
      continue;
    }
    int64_t have = sizes()[i - off];
    if (want == -1) want = have;
    NNKIT_CHECK(have == want || have == 1, "[expand] the expanded size of the tensor (", want,
                ") must match the existing size (", have, ") at non-singleton dimension ", i, ". Target sizes: ",
                new_sizes, ". Tensor sizes: ", sizes());
    sz[i] = want;
    st[i] = have == want ? strides()[i - off] : 0;
  }
  Tensor out = make_view(*this, sz, st, storage_offset());
  Shape in_sizes = sizes();
  view_history(out, *this, "ExpandBackward0", [in_sizes](const Tensor& g) { return sum_to(g, in_sizes); });
  return out;
}

Tensor Tensor::squeeze() const {
  Shape sz;
  for (int64_t s : sizes())
    if (s != 1) sz.push_back(s);
  return view_impl(*this, sz, "squeeze", true);
}

Tensor Tensor::squeeze(int64_t d) const {
  if (dim() == 0) return view_impl(*this, sizes(), "squeeze", true);
  d = wrap_dim(d, dim(), "squeeze");
  if (size(d) != 1) return view_impl(*this, sizes(), "squeeze", true);
  Shape sz = sizes(), st = strides();
  sz.erase(size_t(d));
  st.erase(size_t(d));
  Tensor out = make_view(*this, sz, st, storage_offset());
  Shape in_sizes = sizes();
  view_history(out, *this, "SqueezeBackward1", [in_sizes](const Tensor& g) { return g.reshape(in_sizes); });
  return out;
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape sz = sizes(), st = strides();
  int64_t new_stride = size_t(d) < sz.size() ? sz[size_t(d)] * st[size_t(d)] : 1;
  sz.insert(size_t(d), 1);
  st.insert(size_t(d), new_stride);
  Tensor out = make_view(*this, sz, st, storage_offset());
  view_history(out, *this, "UnsqueezeBackward0", [d](const Tensor& g) { return g.squeeze(d); });
  return out;
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = wrap_dim(start, dim(), "flatten");
  end = wrap_dim(end, dim(), "flatten");
  NNKIT_CHECK(start <= end, "[flatten] start_dim (", start, ") cannot come after end_dim (", end, ")");
  Shape sz;
  for (int64_t i = 0; i < start; ++i) sz.push_back(size(i));
  int64_t prod = 1;
  for (int64_t i = start; i <= end; ++i) prod *= size(i);
  sz.push_back(prod);
  for (int64_t i = end + 1; i < dim(); ++i) sz.push_back(size(i));
  return reshape(sz);
}

Tensor Tensor::unflatten(int64_t d, const Shape& sizes_in) const {
  d = wrap_dim(d, dim(), "unflatten");
  NNKIT_CHECK(!sizes_in.empty(), "[unflatten] sizes must be non-empty");
  Shape inner = infer_size(sizes_in, size(d), "unflatten");
  Shape sz;
  for (int64_t i = 0; i < d; ++i) sz.push_back(size(i));
  for (int64_t s : inner) sz.push_back(s);
  for (int64_t i = d + 1; i < dim(); ++i) sz.push_back(size(i));
  return view(sz);
}

Tensor Tensor::detach() const {
  Tensor out = make_view(*this, sizes(), strides(), storage_offset());
  return out;
}

Tensor& Tensor::detach_() {
  if (auto* m = impl()->autograd()) {
    m->grad_fn.reset();
    m->requires_grad = false;
    m->is_view = false;
  }
  return *this;
}

}  // namespace nnkit
