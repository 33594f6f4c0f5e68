// A new differentiable op from user code: nnkit::autograd::Function (LibTorch's
// torch::autograd::Function). Two ops, each checked against what autograd computes for the same
// thing written with built-in ops, and with gradcheck:
//   - ScaledSiLU: y = scale * x * sigmoid(x), with a hand-written (and twice differentiable)
//     backward that needs less memory than the op-by-op graph;
//   - ClampSTE: clamp to [lo, hi] in forward, identity gradient in backward (a straight-through
//     estimator, as used for quantization-aware training), with non-Tensor arguments.
// Built and run by the tests (ctest -R example_custom_function); exits non-zero on a mismatch.
#include <nnkit/nnkit.h>

#include <cstdio>

using nnkit::Tensor;
using nnkit::TensorList;
using nnkit::autograd::AutogradContext;
using nnkit::autograd::Function;

struct ScaledSiLU : Function<ScaledSiLU> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& scale) {
    ctx->save_for_backward({x, scale});  // version-checked when backward reads them
    return scale * x * x.sigmoid();
  }
  // One gradient per forward argument.
  static TensorList backward(AutogradContext* ctx, TensorList grad_outputs) {
    TensorList saved = ctx->get_saved_variables();
    const Tensor& x = saved[0];
    const Tensor& scale = saved[1];
    const Tensor& g = grad_outputs[0];
    Tensor s = x.sigmoid();
    Tensor grad_x, grad_scale;
    if (ctx->needs_input_grad(0)) grad_x = g * scale * (s + x * s * (1.0 - s));
    if (ctx->needs_input_grad(1)) grad_scale = nnkit::sum_to(g * x * s, scale.sizes());  // undo the broadcast
    return {grad_x, grad_scale};
  }
};

struct ClampSTE : Function<ClampSTE> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, double lo, double hi) {
    ctx->saved_data["lo"] = lo;  // non-Tensor state for backward (unused here, shown for the API)
    return x.clamp(lo, hi);
  }
  static TensorList backward(AutogradContext*, TensorList grad_outputs) {
    return {grad_outputs[0], Tensor(), Tensor()};  // lo and hi are not Tensors: no gradient
  }
};

namespace {
int failures = 0;
void check(bool ok, const char* what) {
  std::printf("%-60s %s\n", what, ok ? "ok" : "MISMATCH");
  if (!ok) ++failures;
}
nnkit::TensorOptions float64(bool requires_grad) {
  nnkit::TensorOptions o;
  o.dtype = nnkit::kFloat64;
  o.requires_grad = requires_grad;
  return o;
}
}  // namespace

int main() {
  nnkit::manual_seed(0);
  Tensor x = nnkit::randn({8, 16}, float64(true));
  Tensor scale = nnkit::randn({16}, float64(true));
  Tensor x_ref = x.detach().clone().requires_grad_();
  Tensor scale_ref = scale.detach().clone().requires_grad_();

  // Forward and first-order gradients against the built-in composition.
  Tensor y = ScaledSiLU::apply(x, scale);
  Tensor y_ref = scale_ref * x_ref * x_ref.sigmoid();
  std::printf("y.grad_fn: %s\n", y.grad_fn()->name().c_str());
  check(y.allclose(y_ref, 1e-12, 1e-12), "ScaledSiLU forward == built-in ops");
  Tensor w = nnkit::randn({8, 16}, float64(false));
  (y * w).sum().backward();
  (y_ref * w).sum().backward();
  check(x.grad().allclose(x_ref.grad(), 1e-12, 1e-12), "ScaledSiLU d/dx == built-in ops");
  check(scale.grad().allclose(scale_ref.grad(), 1e-12, 1e-12), "ScaledSiLU d/dscale == built-in ops");

  // Second order: backward is written with tensor ops, so create_graph differentiates it.
  Tensor a = nnkit::randn({5}, float64(true)), s = nnkit::randn({5}, float64(true));
  Tensor a_ref = a.detach().clone().requires_grad_(), s_ref = s.detach().clone().requires_grad_();
  Tensor ga = nnkit::autograd::grad({ScaledSiLU::apply(a, s).sum()}, {a}, {}, false, /*create_graph=*/true)[0];
  Tensor ga_ref = nnkit::autograd::grad({(s_ref * a_ref * a_ref.sigmoid()).sum()}, {a_ref}, {}, false, true)[0];
  TensorList gga = nnkit::autograd::grad({ga.sum()}, {a, s});
  TensorList gga_ref = nnkit::autograd::grad({ga_ref.sum()}, {a_ref, s_ref});
  check(gga[0].allclose(gga_ref[0], 1e-10, 1e-10) && gga[1].allclose(gga_ref[1], 1e-10, 1e-10),
        "ScaledSiLU second derivatives == built-in ops");

  // gradcheck: analytical gradients against finite differences.
  auto r = nnkit::autograd::gradcheck([](const TensorList& t) { return ScaledSiLU::apply(t[0], t[1]); },
                                      {nnkit::randn({3, 4}, float64(true)), nnkit::randn({4}, float64(true))});
  check(r.ok, "ScaledSiLU gradcheck");
  if (!r.ok) std::printf("  %s\n", r.message.c_str());

  // Straight-through clamp: values clamped, gradient passed through unchanged.
  Tensor q = nnkit::from_vector(std::vector<double>{-3, -0.5, 0, 0.5, 3}, std::nullopt, float64(true));
  Tensor qc = ClampSTE::apply(q, -1.0, 1.0);
  Tensor expected = nnkit::from_vector(std::vector<double>{-1, -0.5, 0, 0.5, 1});
  check(qc.allclose(expected), "ClampSTE forward clamps");
  (qc * 2.0).sum().backward();
  check(q.grad().allclose(nnkit::full({5}, 2.0, float64(false))), "ClampSTE gradient passes straight through");
  Tensor q_ref = q.detach().clone().requires_grad_();
  (q_ref.clamp(-1.0, 1.0) * 2.0).sum().backward();  // the built-in clamp zeroes it outside [lo, hi]
  check(q_ref.grad()[0].item<double>() == 0.0 && q.grad()[0].item<double>() == 2.0,
        "built-in clamp blocks the gradient, ClampSTE does not");

  std::printf("%s\n", failures == 0 ? "all checks passed" : "FAILED");
  return failures == 0 ? 0 : 1;
}
