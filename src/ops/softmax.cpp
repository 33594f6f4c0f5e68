// softmax and log_softmax along one dimension (max-subtracted for stability).
#include <cmath>

#include "autograd/function.h"
#include "ops/common.h"
#include "backend/backend.h"

namespace nnkit {

using autograd::make_node;
using autograd::needs_grad;
using autograd::SavedTensor;
using autograd::set_history;

namespace {

Tensor softmax_impl(const Tensor& x_in, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  detail::check_defined(x_in, name);
  Tensor x = x_in.is_floating_point() ? x_in : x_in.to(kFloat32);
  int64_t d = detail::wrap_dim(dim, x.dim(), name);
  Tensor xc = x.detach().contiguous();
  Tensor out = detail::empty_contig(x.sizes(), x.dtype(), x.device());
  int64_t n = x.dim() == 0 ? 1 : x.size(d), outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= x.size(i);
  for (int64_t i = d + 1; i < x.dim(); ++i) inner *= x.size(i);
  if (x.numel() > 0) detail::backend(out).softmax(out, xc, outer, n, inner, log);
  if (needs_grad(x)) {
    auto node = make_node(log ? "LogSoftmaxBackward0" : "SoftmaxBackward0", {&x},
                          [d, log, so = SavedTensor(out, true)](autograd::Node& self, TensorList&& g) {
                            Tensor y = so.unpack(autograd::running_node(self));
                            if (log) return TensorList{g[0] - y.exp() * g[0].sum(d, true)};
                            return TensorList{y * (g[0] - (g[0] * y).sum(d, true))};
                          });
    set_history(out, std::move(node));
  }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }
Tensor Tensor::softmax(int64_t dim) const { return softmax_impl(*this, dim, false); }
Tensor Tensor::log_softmax(int64_t dim) const { return softmax_impl(*this, dim, true); }

}  // namespace nnkit
