// Matrix products: mm, bmm, matmul (PyTorch's broadcasting rules).
#include "autograd/function.h"
#include "ops/common.h"
#include "backend/backend.h"

namespace nnkit {

using autograd::make_node;
using autograd::needs_grad;
using autograd::requires_grad;
using autograd::SavedTensor;
using autograd::set_history;

namespace {

void check_matmul_dtypes(const Tensor& a, const Tensor& b, const char* op) {
  NNKIT_CHECK(a.dtype() == b.dtype(), "[", op, "] expected both operands to have the same dtype, but got ", a.dtype(),
              " and ", b.dtype());
  NNKIT_CHECK(a.dtype() != kBool, "[", op, "] not implemented for bool tensors");
  detail::check_same_device(a, b, op);
}

}  // namespace

Tensor mm(const Tensor& a, const Tensor& b) {
  detail::check_defined(a, "mm", "first operand");
  detail::check_defined(b, "mm", "second operand");
  NNKIT_CHECK(a.dim() == 2 && b.dim() == 2, "[mm] expects 2-D tensors, got shapes ", a.sizes(), " and ", b.sizes());
  NNKIT_CHECK(a.size(1) == b.size(0), "[mm] shapes ", a.sizes(), " and ", b.sizes(), " cannot be multiplied (",
              a.size(0), "x", a.size(1), " and ", b.size(0), "x", b.size(1), ")");
  check_matmul_dtypes(a, b, "mm");
  Tensor out = detail::empty_contig({a.size(0), b.size(1)}, a.dtype(), a.device());
  detail::backend(out).gemm(out, a, b);
  if (needs_grad(a, b)) {
    bool ga = requires_grad(a), gb = requires_grad(b);
    auto node = make_node("MmBackward0", {&a, &b},
                          [=, sa = SavedTensor(gb ? a : Tensor()), sb = SavedTensor(ga ? b : Tensor())](
                              autograd::Node& self, TensorList&& g) {
                            auto me = autograd::running_node(self);
                            return TensorList{ga ? mm(g[0], sb.unpack(me).t()) : Tensor(),
                                              gb ? mm(sa.unpack(me).t(), g[0]) : Tensor()};
                          });
    set_history(out, std::move(node));
  }
  return out;
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  detail::check_defined(a, "bmm", "first operand");
  detail::check_defined(b, "bmm", "second operand");
  NNKIT_CHECK(a.dim() == 3 && b.dim() == 3, "[bmm] expects 3-D tensors, got shapes ", a.sizes(), " and ", b.sizes());
  NNKIT_CHECK(a.size(0) == b.size(0), "[bmm] batch sizes differ: ", a.sizes(), " and ", b.sizes());
  NNKIT_CHECK(a.size(2) == b.size(1), "[bmm] shapes ", a.sizes(), " and ", b.sizes(), " cannot be multiplied (",
              a.size(1), "x", a.size(2), " and ", b.size(1), "x", b.size(2), ")");
  check_matmul_dtypes(a, b, "bmm");
  int64_t batch = a.size(0);
  Tensor out = detail::empty_contig({batch, a.size(1), b.size(2)}, a.dtype(), a.device());
  Tensor ad = a.detach(), bd = b.detach();
  detail::backend(out).gemm(out, ad, bd);
  if (needs_grad(a, b)) {
    bool ga = requires_grad(a), gb = requires_grad(b);
    auto node = make_node("BmmBackward0", {&a, &b},
                          [=, sa = SavedTensor(gb ? a : Tensor()), sb = SavedTensor(ga ? b : Tensor())](
                              autograd::Node& self, TensorList&& g) {
                            auto me = autograd::running_node(self);
                            return TensorList{ga ? bmm(g[0], sb.unpack(me).transpose(1, 2)) : Tensor(),
                                              gb ? bmm(sa.unpack(me).transpose(1, 2), g[0]) : Tensor()};
                          });
    set_history(out, std::move(node));
  }
  return out;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  detail::check_defined(a, "matmul", "first operand");
  detail::check_defined(b, "matmul", "second operand");
  int64_t da = a.dim(), db = b.dim();
  NNKIT_CHECK(da > 0 && db > 0, "[matmul] both arguments need at least 1 dimension, got ", da, "D and ", db, "D");
  auto fail = [&] {
    detail::throw_error(detail::concat("[matmul] shapes ", a.sizes(), " and ", b.sizes(), " cannot be multiplied"));
  };
  if (da == 1 && db == 1) {
    if (a.size(0) != b.size(0)) fail();
    return mm(a.unsqueeze(0), b.unsqueeze(1)).reshape(Shape());
  }
  if (da == 2 && db == 1) {
    if (a.size(1) != b.size(0)) fail();
    return mm(a, b.unsqueeze(1)).squeeze(1);
  }
  if (da == 1 && db == 2) {
    if (a.size(0) != b.size(0)) fail();
    return mm(a.unsqueeze(0), b).squeeze(0);
  }
  if (da == 2 && db == 2) {
    if (a.size(1) != b.size(0)) fail();
    return mm(a, b);
  }
  // Batched: a [..., n, k] (or [k]) with b [..., k, m] (or [k]); batch dims broadcast.
  Tensor A = da == 1 ? a.unsqueeze(0) : a;
  Tensor B = db == 1 ? b.unsqueeze(1) : b;
  int64_t n = A.size(-2), k = A.size(-1), k2 = B.size(-2), m = B.size(-1);
  if (k != k2) fail();
  Shape ba(A.sizes().begin(), A.dim() - 2), bb(B.sizes().begin(), B.dim() - 2);
  Shape batch = broadcast_shapes(ba, bb, "matmul");
  int64_t nb = batch.numel();
  Shape ea = batch, eb = batch;
  ea.push_back(n);
  ea.push_back(k);
  eb.push_back(k);
  eb.push_back(m);
  Tensor out;
  if (db == 2 && bb.empty() && ba == batch) {
    // [..., n, k] @ [k, m]: one big mm over the folded batch.
    out = mm(A.reshape({nb * n, k}), B);
  } else {
    out = bmm(A.expand(ea).reshape({nb, n, k}), B.expand(eb).reshape({nb, k, m}));
  }
  Shape out_shape = batch;
  if (da > 1) out_shape.push_back(n);
  if (db > 1) out_shape.push_back(m);
  return out.reshape(out_shape);
}

Tensor Tensor::matmul(const Tensor& o) const { return nnkit::matmul(*this, o); }
Tensor Tensor::mm(const Tensor& o) const { return nnkit::mm(*this, o); }
Tensor Tensor::bmm(const Tensor& o) const { return nnkit::bmm(*this, o); }

}  // namespace nnkit
