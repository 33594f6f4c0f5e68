// Matrix products: mm, bmm, matmul (PyTorch's broadcasting rules).
#include "autograd/function.h"
#include "cpu/kernels.h"
#include "cpu/loops.h"
#include "ops/common.h"
#include "ops/cuda_ops.h"

namespace nnkit {

using autograd::make_node;
using autograd::needs_grad;
using autograd::requires_grad;
using autograd::SavedTensor;
using autograd::set_history;

namespace {

// A matrix operand usable by gemm: one of its two strides must be 1.
Tensor gemm_ready(const Tensor& m) {
  int64_t rs = m.stride(-2), cs = m.stride(-1);
  if (cs == 1 || rs == 1 || m.size(-1) <= 1 || m.size(-2) <= 1) return m;
  return m.contiguous();
}

void check_matmul_dtypes(const Tensor& a, const Tensor& b, const char* op) {
  NNKIT_CHECK(a.dtype() == b.dtype(), "[", op, "] expected both operands to have the same dtype, but got ", a.dtype(),
              " and ", b.dtype());
  NNKIT_CHECK(a.dtype() != kBool, "[", op, "] not implemented for bool tensors");
  detail::check_same_device(a, b, op);
  // cuBLAS has no integer matrix product (PyTorch has none on CUDA either).
  NNKIT_CHECK(a.is_cpu() || a.is_floating_point(), "[", op, "] not implemented on CUDA for ", a.dtype(),
              " tensors (only float32 and float64)");
}

// Row and column strides of a gemm-ready matrix, with degenerate (size <= 1) dimensions
// normalized so that one stride is 1 and the other is a valid leading dimension.
std::pair<int64_t, int64_t> mat_strides(const Tensor& m) {
  int64_t rows = m.size(0), cols = m.size(1);
  if (cols <= 1 || m.stride(1) == 1) return {rows <= 1 ? std::max<int64_t>(cols, 1) : m.stride(0), 1};
  return {1, cols <= 1 ? std::max<int64_t>(rows, 1) : m.stride(1)};
}

void mm_kernel(const Tensor& out, const Tensor& a, const Tensor& b) {
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  if (out.is_cpu() && M * N * K <= cpu::kSmallGemm) {  // any strides: no copies, no handle copies
    detail::dispatch<detail::kNumericTypes>(out.dtype(), "mm", [&]<typename T>() {
      cpu::gemm<T>(M, N, K, a.data_ptr<T>(), a.stride(0), a.stride(1), b.data_ptr<T>(), b.stride(0), b.stride(1),
                   out.data_ptr<T>(), N);
    });
    return;
  }
  Tensor A = gemm_ready(a), B = gemm_ready(b);
  if (out.is_cuda()) {
    cuda_detail::gemm(out, A, B);
    return;
  }
  // (plain variables, not structured bindings: clang < 16 cannot capture those in a lambda)
  const auto a_st = mat_strides(A), b_st = mat_strides(B);
  const int64_t a_rs = a_st.first, a_cs = a_st.second, b_rs = b_st.first, b_cs = b_st.second;
  detail::dispatch<detail::kNumericTypes>(out.dtype(), "mm", [&]<typename T>() {
    cpu::gemm<T>(M, N, K, A.data_ptr<T>(), a_rs, a_cs, B.data_ptr<T>(), b_rs, b_cs, out.data_ptr<T>(), N);
  });
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
  mm_kernel(out, a, b);
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
  if (out.is_cuda()) {
    // One strided-batched cuBLAS call (any batch stride, 0 included).
    cuda_detail::gemm(out, gemm_ready(ad), gemm_ready(bd));
  } else {
    cpu::parallel_for(batch, 1, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) mm_kernel(out.select(0, i), ad.select(0, i), bd.select(0, i));
    });
  }
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
