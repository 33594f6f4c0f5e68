// cat and stack.
#include "autograd/function.h"
#include "ops/common.h"

namespace nnkit {

using autograd::make_node_list;
using autograd::needs_grad_list;
using autograd::set_history;

Tensor cat(const TensorList& tensors, int64_t dim) {
  NNKIT_CHECK(!tensors.empty(), "[cat] expected a non-empty list of tensors");
  for (size_t i = 0; i < tensors.size(); ++i)
    NNKIT_CHECK(tensors[i].defined(), "[cat] tensor ", i, " is undefined");
  const Tensor& first = tensors[0];
  NNKIT_CHECK(first.dim() > 0, "[cat] zero-dimensional tensor (at position 0) cannot be concatenated");
  int64_t d = detail::wrap_dim(dim, first.dim(), "cat");
  Dtype dtype = first.dtype();
  Shape out_sizes = first.sizes();
  out_sizes[size_t(d)] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    NNKIT_CHECK(t.dim() == first.dim(), "[cat] tensors must have the same number of dimensions: got ", first.dim(),
                " and ", t.dim(), " (tensor ", i, ")");
    detail::check_same_device(first, t, "cat");
    for (int64_t k = 0; k < t.dim(); ++k)
      NNKIT_CHECK(k == d || t.size(k) == first.size(k), "[cat] sizes of tensors must match except in dimension ", d,
                  ". Expected size ", first.size(k), " but got size ", t.size(k), " for tensor number ", i,
                  " in the list (shapes ", first.sizes(), " and ", t.sizes(), ")");
    out_sizes[size_t(d)] += t.size(d);
    dtype = promote_types(dtype, t.dtype());
  }
  Tensor out = detail::empty_contig(out_sizes, dtype, first.device());
  int64_t offset = 0;
  Shape lengths;
  for (const Tensor& t : tensors) {
    detail::copy_kernel(out.narrow(d, offset, t.size(d)), t);
    offset += t.size(d);
    lengths.push_back(t.size(d));
  }
  if (needs_grad_list(tensors)) {
    std::vector<Dtype> dtypes;
    for (const Tensor& t : tensors) dtypes.push_back(t.dtype());
    auto node = make_node_list("CatBackward0", tensors, [d, lengths, dtypes](autograd::Node&, TensorList&& g) {
      TensorList res;
      int64_t off = 0;
      for (size_t i = 0; i < lengths.size(); ++i) {
        res.push_back(g[0].narrow(d, off, lengths[i]).to(dtypes[i]));
        off += lengths[i];
      }
      return res;
    });
    set_history(out, std::move(node));
  }
  return out;
}

Tensor stack(const TensorList& tensors, int64_t dim) {
  NNKIT_CHECK(!tensors.empty(), "[stack] expected a non-empty list of tensors");
  for (size_t i = 0; i < tensors.size(); ++i) {
    NNKIT_CHECK(tensors[i].defined(), "[stack] tensor ", i, " is undefined");
    NNKIT_CHECK(tensors[i].sizes() == tensors[0].sizes(), "[stack] expects each tensor to be equal size, but got ",
                tensors[0].sizes(), " at entry 0 and ", tensors[i].sizes(), " at entry ", i);
  }
  int64_t d = detail::wrap_dim(dim, tensors[0].dim() + 1, "stack");
  TensorList expanded;
  for (const Tensor& t : tensors) expanded.push_back(t.unsqueeze(d));
  return cat(expanded, d);
}

}  // namespace nnkit
