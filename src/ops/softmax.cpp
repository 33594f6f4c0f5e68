// softmax and log_softmax along one dimension (max-subtracted for stability).
#include <cmath>

#include "autograd/function.h"
#include "cpu/loops.h"
#include "ops/common.h"
#include "ops/cuda_ops.h"

namespace nnkit {

using autograd::make_node;
using autograd::needs_grad;
using autograd::SavedTensor;
using autograd::set_history;

namespace {

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
  if (x.numel() > 0 && x.is_cuda())
    cuda_detail::softmax(out, xc, outer, n, inner, log);
  else if (x.numel() > 0)
    detail::dispatch<detail::kFloatingTypes>(x.dtype(), name, [&]<typename T>() {
      softmax_kernel<T>(xc.data_ptr<T>(), out.data_ptr<T>(), outer, n, inner, log);
    });
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
