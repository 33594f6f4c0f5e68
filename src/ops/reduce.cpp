// Reductions over all or some dimensions: sum, mean, var, std, amax/amin, max/min with
// indices, argmax/argmin; and sum_to (the gradient of broadcasting).
#include <cmath>
#include <limits>

#include "autograd/function.h"
#include "ops/common.h"
#include "backend/backend.h"
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
  Shape out_sizes;   // keepdim=false shape
  Shape keep_sizes;  // keepdim=true shape
  int64_t out_numel = 1, red_numel = 1;
};

// The output shapes of a reduction over the sorted dims (none: all).
Layout make_layout(const Tensor& x, const Shape& dims) {
  Layout L;
  int64_t nd = x.dim();
  std::vector<bool> reduced(size_t(std::max<int64_t>(nd, 1)), dims.empty());
  for (int64_t d : dims) reduced[size_t(d)] = true;
  for (int64_t d = 0; d < nd; ++d) {
    if (reduced[size_t(d)]) {
      L.red_numel *= x.size(d);
      L.keep_sizes.push_back(1);
    } else {
      L.out_numel *= x.size(d);
      L.out_sizes.push_back(x.size(d));
      L.keep_sizes.push_back(x.size(d));
    }
  }
  return L;
}

// out = op over dims on x's backend, in a new tensor of the reduced shape.
Tensor reduce_into(const Tensor& x, const Shape& dims, const Layout& L, bool keepdim, Dtype dtype, detail::Reduce op,
                   double correction = 0) {
  Tensor out = detail::empty_contig(keepdim ? L.keep_sizes : L.out_sizes, dtype, x.device());
  if (out.numel() > 0) detail::backend(x).reduce(out, x, dims, op, correction);
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
  out = reduce_into(x, dims, L, keepdim, dtype, mean ? detail::Reduce::Mean : detail::Reduce::Sum);
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

Tensor var_impl(const Tensor& x, const Shape& dims_in, double correction, bool keepdim, bool take_sqrt) {
  const char* name = take_sqrt ? "std" : "var";
  detail::check_defined(x, name);
  NNKIT_CHECK(x.is_floating_point(), "[", name, "] expects a floating-point tensor, got ", x.dtype());
  Shape dims = dims_or_all(x, dims_in, name);
  Layout L = make_layout(x, dims);
  Tensor out;
  out = reduce_into(x, dims, L, keepdim, x.dtype(), take_sqrt ? detail::Reduce::Std : detail::Reduce::Var, correction);
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


Tensor extreme_all_dims(const Tensor& x, const Shape& dims_in, bool keepdim, bool is_max, const char* name) {
  detail::check_defined(x, name);
  Shape dims = dims_or_all(x, dims_in, name);
  Layout L = make_layout(x, dims);
  NNKIT_CHECK(L.red_numel > 0 || L.out_numel == 0, "[", name,
              "] expected reduction dims to have nonzero size (the operation has no identity)");
  Tensor out;
  out = reduce_into(x, dims, L, keepdim, x.dtype(), is_max ? detail::Reduce::Max : detail::Reduce::Min);
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
  const Shape& shape = keepdim ? L.keep_sizes : L.out_sizes;
  if (want_values) values = detail::empty_contig(shape, x.dtype(), x.device());
  indices = detail::empty_contig(shape, kInt64, x.device());
  if (indices.numel() > 0) detail::backend(x).best(values, indices, x, d, is_max);
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
                            Tensor pos = arange(in[size_t(d)], {.device = g[0].device()}).view(pos_shape);
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
