// Custom autograd functions (nnkit::autograd::Function): outputs and gradients against the
// same computation in built-in ops, gradcheck and double backward in float64, the context
// (saved tensors and their version check, saved_data, mark_dirty, mark_non_differentiable,
// needs_input_grad, set_materialize_grads), the gradient count/shape/dtype checks, and a
// custom function inside a Module with hooks.
#include <gtest/gtest.h>

#include <nnkit/nnkit.h>

#include "test_util.h"

using namespace nnkit;
using autograd::AutogradContext;
using autograd::Function;
using autograd::gradcheck;
using nnkit::test_util::error_of;

namespace {

TensorOptions f64(bool requires_grad = true) {
  TensorOptions o;
  o.dtype = kFloat64;
  o.requires_grad = requires_grad;
  return o;
}
Tensor R(const Shape& s, bool rg = true) { return randn(s, f64(rg)); }
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// y = scale * x * sigmoid(x); scale broadcasts against x. Saves inputs.
struct ScaledSiLU : Function<ScaledSiLU> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& scale) {
    ctx->save_for_backward({x, scale});
    return scale * x * x.sigmoid();
  }
  static TensorList backward(AutogradContext* ctx, TensorList grad_outputs) {
    TensorList saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &scale = saved[1];
    Tensor s = x.sigmoid();
    Tensor gx = grad_outputs[0] * scale * (s + x * s * (1.0 - s));
    Tensor gscale = sum_to(grad_outputs[0] * x * s, scale.sizes());
    return {gx, gscale};
  }
};
Tensor scaled_silu_builtin(const Tensor& x, const Tensor& scale) { return scale * x * x.sigmoid(); }

// y = exp(x): saves its output, so double backward goes through a saved output.
struct Exp : Function<Exp> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x) {
    Tensor y = x.exp();
    ctx->save_for_backward({y});
    return y;
  }
  static TensorList backward(AutogradContext* ctx, TensorList g) { return {g[0] * ctx->get_saved_variables()[0]}; }
};

// out = a * b + alpha * a, with non-Tensor arguments in between.
struct MulAdd : Function<MulAdd> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a, double alpha, const Tensor& b) {
    ctx->saved_data["alpha"] = alpha;
    ctx->save_for_backward({a, b});
    return a * b + a * alpha;
  }
  static TensorList backward(AutogradContext* ctx, TensorList g) {
    auto saved = ctx->get_saved_variables();
    double alpha = ctx->saved_data["alpha"].toDouble();
    return {g[0] * (saved[1] + alpha), Tensor(), g[0] * saved[0]};
  }
};

// The gradient of sum(f(x, ...)) w.r.t. x, with create_graph (so it is itself differentiable).
// Works under NoGradGuard too (gradcheck's finite differences), on a fresh leaf.
template <typename F>
Tensor grad_of(F f, const Tensor& x0, const TensorList& rest) {
  EnableGradGuard grad_on;
  Tensor x = x0.requires_grad() ? x0 : x0.detach().requires_grad_();
  Tensor y = f(x, rest);
  return autograd::grad({y.sum()}, {x}, {}, false, /*create_graph=*/true)[0];
}

}  // namespace

TEST(CustomFunction, MatchesBuiltinOpsForwardAndBackward) {
  manual_seed(1);
  for (Dtype dt : {kFloat32, kFloat64}) {
    TensorOptions o;
    o.dtype = dt;
    o.requires_grad = true;
    Tensor x = randn({4, 5}, o), scale = randn({5}, o);
    Tensor x2 = x.detach().clone().requires_grad_(), scale2 = scale.detach().clone().requires_grad_();
    Tensor y = ScaledSiLU::apply(x, scale);
    Tensor y2 = scaled_silu_builtin(x2, scale2);
    ASSERT_TRUE(y.requires_grad());
    EXPECT_TRUE(y.allclose(y2));
    Tensor w = randn({4, 5}, {.dtype = dt, .device = std::nullopt, .requires_grad = false});
    (y * w).sum().backward();
    (y2 * w).sum().backward();
    const double tol = dt == kFloat32 ? 1e-5 : 1e-12;
    EXPECT_TRUE(x.grad().allclose(x2.grad(), tol, tol));
    EXPECT_TRUE(scale.grad().allclose(scale2.grad(), tol, tol));
    EXPECT_EQ(scale.grad().sizes(), Shape({5}));
  }
  // Non-Tensor arguments between Tensors.
  Tensor a = R({3, 2}), b = R({3, 2});
  Tensor a2 = a.detach().clone().requires_grad_(), b2 = b.detach().clone().requires_grad_();
  MulAdd::apply(a, 0.5, b).pow(2.0).sum().backward();
  (a2 * b2 + a2 * 0.5).pow(2.0).sum().backward();
  EXPECT_TRUE(a.grad().allclose(a2.grad(), 1e-12, 1e-12));
  EXPECT_TRUE(b.grad().allclose(b2.grad(), 1e-12, 1e-12));
}

TEST(CustomFunction, NodeNameAndNoGrad) {
  Tensor x = R({3});
  Tensor y = ScaledSiLU::apply(x, ones({1}, f64(false)));
  ASSERT_TRUE(y.grad_fn());
  EXPECT_EQ(y.grad_fn()->name(), "CppNode<ScaledSiLU>");
  EXPECT_EQ(y.grad_fn()->next_edges().size(), 2u);
  EXPECT_FALSE(y.grad_fn()->next_edges()[1].valid());  // scale does not require grad
  {
    NoGradGuard no_grad;
    Tensor z = ScaledSiLU::apply(x, ones({1}, f64(false)));
    EXPECT_FALSE(z.requires_grad());
    EXPECT_FALSE(z.grad_fn());
  }
  Tensor z = ScaledSiLU::apply(x.detach(), ones({1}, f64(false)));  // nothing requires grad
  EXPECT_FALSE(z.requires_grad());
}

TEST(CustomFunction, Gradcheck) {
  manual_seed(2);
  auto silu = [](const TensorList& t) { return ScaledSiLU::apply(t[0], t[1]); };
  auto r = gradcheck(silu, {R({3, 4}), R({4})});
  EXPECT_TRUE(r.ok) << r.message;
  r = gradcheck(silu, {R({2, 3}), R({}, false)});
  EXPECT_TRUE(r.ok) << r.message;
  r = gradcheck([](const TensorList& t) { return Exp::apply(t[0] * 0.5); }, {R({5})});
  EXPECT_TRUE(r.ok) << r.message;
  r = gradcheck([](const TensorList& t) { return MulAdd::apply(t[0], -1.5, t[1]); }, {R({2, 3}), R({2, 3})});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(CustomFunction, DoubleBackward) {
  manual_seed(3);
  // The gradient function of each custom op, gradchecked: its backward is differentiable.
  auto silu = [](const Tensor& x, const TensorList& rest) { return ScaledSiLU::apply(x, rest[0]); };
  auto r = gradcheck([&](const TensorList& t) { return grad_of(silu, t[0], {t[1]}); }, {R({6}), R({6})});
  EXPECT_TRUE(r.ok) << r.message;
  auto exp_fn = [](const Tensor& x, const TensorList&) { return Exp::apply(x); };
  r = gradcheck([&](const TensorList& t) { return grad_of(exp_fn, t[0], {}); }, {R({4})});
  EXPECT_TRUE(r.ok) << r.message;

  // Second derivatives against the built-in ops.
  Tensor x = R({5}), scale = R({5});
  Tensor x2 = x.detach().clone().requires_grad_(), scale2 = scale.detach().clone().requires_grad_();
  Tensor g = autograd::grad({ScaledSiLU::apply(x, scale).sum()}, {x}, {}, false, true)[0];
  Tensor g2 = autograd::grad({scaled_silu_builtin(x2, scale2).sum()}, {x2}, {}, false, true)[0];
  ASSERT_TRUE(g.requires_grad());
  EXPECT_TRUE(g.allclose(g2, 1e-12, 1e-12));
  auto gg = autograd::grad({g.pow(2.0).sum()}, {x, scale});
  auto gg2 = autograd::grad({g2.pow(2.0).sum()}, {x2, scale2});
  EXPECT_TRUE(gg[0].allclose(gg2[0], 1e-10, 1e-10));
  EXPECT_TRUE(gg[1].allclose(gg2[1], 1e-10, 1e-10));
  // d2/dx2 exp(x) = exp(x), through the saved output.
  Tensor e = R({3});
  Tensor ge = autograd::grad({Exp::apply(e).sum()}, {e}, {}, false, true)[0];
  Tensor gge = autograd::grad({ge.sum()}, {e})[0];
  EXPECT_TRUE(gge.allclose(e.detach().exp(), 1e-12, 1e-12));
  // backward(create_graph=true) leaves a differentiable .grad().
  Tensor l = R({3});
  Exp::apply(l).sum().backward({}, false, true);
  ASSERT_TRUE(l.grad().requires_grad());
  Tensor second = autograd::grad({l.grad().sum()}, {l})[0];
  EXPECT_TRUE(second.allclose(l.detach().exp(), 1e-12, 1e-12));
}

TEST(CustomFunction, SavedTensorModifiedInPlace) {
  Tensor leaf = R({3});
  Tensor x = leaf * 1.0;  // a non-leaf: in-place ops are allowed on it
  Tensor y = ScaledSiLU::apply(x, ones({3}, f64(false)));
  x.add_(1.0);
  std::string msg = error_of([&] { y.sum().backward(); });
  EXPECT_TRUE(contains(msg, "modified by an in-place operation")) << msg;
  EXPECT_TRUE(contains(msg, "saved by CppNode<ScaledSiLU>")) << msg;
  EXPECT_TRUE(contains(msg, "is at version 1; expected version 0")) << msg;
  // A saved output modified in place.
  Tensor e = R({3});
  Tensor ey = Exp::apply(e);
  {
    NoGradGuard g;
    ey.mul_(2.0);
  }
  msg = error_of([&] { ey.sum().backward(); });
  EXPECT_TRUE(contains(msg, "modified by an in-place operation")) << msg;
  // A second backward after the saved tensors were freed.
  Tensor z = Exp::apply(e);
  z.sum().backward();
  msg = error_of([&] { z.sum().backward(); });
  EXPECT_TRUE(contains(msg, "backward through the graph a second time")) << msg;
  EXPECT_TRUE(contains(msg, "CppNode<Exp>")) << msg;
  Tensor z2 = Exp::apply(e);
  z2.sum().backward({}, /*retain_graph=*/true);
  z2.sum().backward();
  EXPECT_TRUE(e.grad().allclose(e.detach().exp() * 3.0, 1e-12, 1e-12));
}

namespace {
// x *= c in place (through raw data, as a kernel would), marked dirty.
struct MulInPlace : Function<MulInPlace> {
  static Tensor forward(AutogradContext* ctx, Tensor x, double c) {
    ctx->saved_data["c"] = c;
    double* p = x.data_ptr<double>();
    for (int64_t i = 0; i < x.numel(); ++i) p[i] *= c;
    ctx->mark_dirty({x});
    return x;
  }
  static TensorList backward(AutogradContext* ctx, TensorList g) {
    return {g[0] * ctx->saved_data.at("c").toDouble(), Tensor()};
  }
};
struct ForgetsDirtyOutput : Function<ForgetsDirtyOutput> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x) {
    ctx->mark_dirty({x});
    return x * 2.0;
  }
  static TensorList backward(AutogradContext*, TensorList g) { return g; }
};
}  // namespace

TEST(CustomFunction, MarkDirty) {
  Tensor leaf = R({4});
  Tensor a = leaf * 1.0;
  const uint32_t v = a.version();
  Tensor out = MulInPlace::apply(a, 3.0);
  EXPECT_TRUE(out.is_same(a));  // the input itself, now with this function as its history
  EXPECT_GT(a.version(), v);
  EXPECT_EQ(a.grad_fn()->name(), "CppNode<MulInPlace>");
  EXPECT_TRUE(a.allclose(leaf.detach() * 3.0));
  (a * a).sum().backward();
  EXPECT_TRUE(leaf.grad().allclose(leaf.detach() * 18.0, 1e-12, 1e-12));  // d/dl (3l)^2 = 18 l

  // A leaf that requires grad may not be modified in place.
  Tensor l2 = R({2});
  std::string msg = error_of([&] { MulInPlace::apply(l2, 2.0); });
  EXPECT_TRUE(contains(msg, "[CppNode<MulInPlace>] a leaf tensor that requires grad")) << msg;
  // Without grad mode it is fine (like any in-place update of a parameter under NoGradGuard).
  {
    NoGradGuard g;
    MulInPlace::apply(l2, 2.0);
  }
  // A dirty input must be returned.
  msg = error_of([&] { ForgetsDirtyOutput::apply(leaf * 1.0); });
  EXPECT_TRUE(contains(msg, "was not returned by forward")) << msg;
}

namespace {
// Returns {2x, mask(x > 0)}; the mask is not differentiable.
struct DoubleAndMask : Function<DoubleAndMask> {
  static inline bool materialize = true;
  static inline bool second_grad_defined = false;
  static inline double second_grad_abs_sum = -1;
  static TensorList forward(AutogradContext* ctx, const Tensor& x) {
    Tensor mask = (x > 0.0).to(x.dtype());
    ctx->mark_non_differentiable({mask});
    ctx->set_materialize_grads(materialize);
    return {x * 2.0, mask};
  }
  static TensorList backward(AutogradContext*, TensorList g) {
    second_grad_defined = g[1].defined();
    second_grad_abs_sum = g[1].defined() ? g[1].abs().sum().item<double>() : -1;
    return {g[0].defined() ? g[0] * 2.0 : Tensor()};
  }
};
// Two differentiable outputs: {x * 2, x * 3}.
struct TwoOutputs : Function<TwoOutputs> {
  static TensorList forward(AutogradContext* ctx, const Tensor& x) {
    TensorList out{x * 2.0, x * 3.0};
    ctx->save_for_backward({out[1]});  // a saved output that is not output 0
    return out;
  }
  static TensorList backward(AutogradContext* ctx, TensorList g) {
    Tensor y1 = ctx->get_saved_variables()[0];
    return {g[0] * 2.0 + g[1] * y1 / y1 * 3.0};
  }
};
// Returns its input as is.
struct Identity : Function<Identity> {
  static Tensor forward(AutogradContext*, const Tensor& x) { return x; }
  static TensorList backward(AutogradContext*, TensorList g) { return g; }
};
}  // namespace

TEST(CustomFunction, OutputsNonDifferentiableAndMaterialized) {
  Tensor x = R({5});
  auto outs = DoubleAndMask::apply(x);
  ASSERT_EQ(outs.size(), 2u);
  EXPECT_TRUE(outs[0].requires_grad());
  EXPECT_FALSE(outs[1].requires_grad());
  EXPECT_FALSE(outs[1].grad_fn());
  EXPECT_EQ(outs[0].grad_fn()->num_outputs(), 2u);
  outs[0].sum().backward();
  EXPECT_TRUE(DoubleAndMask::second_grad_defined);  // materialized zeros
  EXPECT_EQ(DoubleAndMask::second_grad_abs_sum, 0.0);
  EXPECT_TRUE(x.grad().allclose(full({5}, 2.0, f64(false))));

  DoubleAndMask::materialize = false;
  Tensor x2 = R({5});
  DoubleAndMask::apply(x2)[0].sum().backward();
  EXPECT_FALSE(DoubleAndMask::second_grad_defined);
  DoubleAndMask::materialize = true;

  // Multiple differentiable outputs; only one used: the other's gradient is zeros.
  Tensor y = R({3});
  auto two = TwoOutputs::apply(y);
  EXPECT_EQ(two[1].output_nr(), 1u);
  two[1].sum().backward({}, /*retain_graph=*/true);
  EXPECT_TRUE(y.grad().allclose(full({3}, 3.0, f64(false)), 1e-12, 1e-12));
  (two[0] + two[1]).sum().backward();
  EXPECT_TRUE(y.grad().allclose(full({3}, 8.0, f64(false)), 1e-12, 1e-12));
  // Double backward through a saved output with output_nr 1.
  Tensor w = R({3});
  Tensor gw = autograd::grad({TwoOutputs::apply(w)[1].sum()}, {w}, {}, false, true)[0];
  EXPECT_TRUE(gw.allclose(full({3}, 3.0, f64(false)), 1e-12, 1e-12));

  // An input returned as is: a new tensor with this function's history; the input keeps its own.
  Tensor leaf = R({2});
  Tensor h = leaf * 2.0;
  Tensor id = Identity::apply(h);
  EXPECT_FALSE(id.is_same(h));
  EXPECT_TRUE(id.is_alias_of(h));
  EXPECT_EQ(id.grad_fn()->name(), "CppNode<Identity>");
  EXPECT_NE(h.grad_fn()->name(), "CppNode<Identity>");
  (id * 5.0).sum().backward();
  EXPECT_TRUE(leaf.grad().allclose(full({2}, 10.0, f64(false))));
  // Tensor hooks on a custom function's output.
  Tensor q = R({2});
  Tensor qo = Identity::apply(q);
  auto handle = qo.register_hook([](const Tensor& g) { return g * 4.0; });
  qo.sum().backward();
  EXPECT_TRUE(q.grad().allclose(full({2}, 4.0, f64(false))));
}

namespace {
struct WrongCount : Function<WrongCount> {
  static Tensor forward(AutogradContext*, const Tensor& x, const Tensor& y) { return x * y; }
  static TensorList backward(AutogradContext*, TensorList g) { return {g[0]}; }
};
struct TooManyUndefined : Function<TooManyUndefined> {
  static Tensor forward(AutogradContext*, const Tensor& x) { return x * 2.0; }
  static TensorList backward(AutogradContext*, TensorList g) { return {g[0] * 2.0, Tensor(), Tensor()}; }
};
struct GradForNonTensor : Function<GradForNonTensor> {
  static Tensor forward(AutogradContext*, const Tensor& x, int k) { return x * double(k); }
  static TensorList backward(AutogradContext*, TensorList g) { return {g[0], g[0]}; }
};
// Returns a gradient of a chosen shape/dtype for x.
struct BadGrad : Function<BadGrad> {
  static inline Shape shape;
  static inline Dtype dtype = kFloat64;
  static Tensor forward(AutogradContext*, const Tensor& x) { return x.clone(); }
  static TensorList backward(AutogradContext*, TensorList) {
    TensorOptions o;
    o.dtype = dtype;
    return {ones(shape, o)};
  }
};
// Returns a single Tensor from backward.
struct Square : Function<Square> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return x * x;
  }
  static Tensor backward(AutogradContext* ctx, TensorList g) { return g[0] * 2.0 * ctx->get_saved_variables()[0]; }
};
}  // namespace

TEST(CustomFunction, GradientChecks) {
  Tensor x = R({2, 3}), y = R({2, 3});
  std::string msg = error_of([&] { WrongCount::apply(x, y).sum().backward(); });
  EXPECT_TRUE(contains(msg, "[CppNode<WrongCount>] backward returned an incorrect number of gradients (expected 2, got 1)"))
      << msg;
  TooManyUndefined::apply(x).sum().backward();  // extra undefined gradients are dropped
  EXPECT_TRUE(x.grad().allclose(full({2, 3}, 2.0, f64(false))));
  msg = error_of([&] { GradForNonTensor::apply(x, 3).sum().backward(); });
  EXPECT_TRUE(contains(msg, "defined gradient at index 1, but argument 1 of forward is not a Tensor")) << msg;

  BadGrad::shape = {3, 2};
  msg = error_of([&] { BadGrad::apply(x).sum().backward(); });
  EXPECT_TRUE(contains(msg, "[CppNode<BadGrad>] backward returned an invalid gradient at index 0 - got [3, 2] but "
                            "expected shape compatible with [2, 3]"))
      << msg;
  // A broadcast gradient is summed to the input's shape; float32 is cast to the input's float64.
  Tensor v = R({3});
  BadGrad::shape = {4, 3};
  BadGrad::dtype = kFloat32;
  BadGrad::apply(v).sum().backward();
  EXPECT_EQ(v.grad().dtype(), kFloat64);
  EXPECT_TRUE(v.grad().allclose(full({3}, 4.0, f64(false))));
  BadGrad::shape = {3};
  BadGrad::dtype = kInt64;
  msg = error_of([&] { BadGrad::apply(v).sum().backward(); });
  EXPECT_TRUE(contains(msg, "gradients must be floating point")) << msg;
  BadGrad::dtype = kFloat64;

  // backward may return a single Tensor for a single input.
  Tensor s = R({3});
  Square::apply(s).sum().backward();
  EXPECT_TRUE(s.grad().allclose(s.detach() * 2.0, 1e-12, 1e-12));
}

namespace {
struct RecordsNeeds : Function<RecordsNeeds> {
  static inline std::vector<bool> in_forward, in_backward;
  static Tensor forward(AutogradContext* ctx, const Tensor& a, double, const Tensor& b) {
    in_forward = {ctx->needs_input_grad(0), ctx->needs_input_grad(1)};
    return a * b;
  }
  static TensorList backward(AutogradContext* ctx, TensorList g) {
    in_backward = {ctx->needs_input_grad(0), ctx->needs_input_grad(1)};
    EXPECT_TRUE(ctx->get_saved_variables().empty());
    return {ctx->needs_input_grad(0) ? g[0] : Tensor(), Tensor(), ctx->needs_input_grad(1) ? g[0] : Tensor()};
  }
};
struct BadNeedsIndex : Function<BadNeedsIndex> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a, double) {
    ctx->needs_input_grad(1);
    return a.clone();
  }
  static TensorList backward(AutogradContext*, TensorList g) { return {g[0], Tensor()}; }
};
}  // namespace

TEST(CustomFunction, NeedsInputGrad) {
  Tensor a = R({2}), b = R({2}, false);
  RecordsNeeds::apply(a, 1.0, b).sum().backward();
  EXPECT_EQ(RecordsNeeds::in_forward, (std::vector<bool>{true, false}));
  EXPECT_EQ(RecordsNeeds::in_backward, (std::vector<bool>{true, false}));
  RecordsNeeds::apply(b, 1.0, a).sum().backward();
  EXPECT_EQ(RecordsNeeds::in_backward, (std::vector<bool>{false, true}));
  {
    NoGradGuard g;
    RecordsNeeds::apply(a, 1.0, a);
    EXPECT_EQ(RecordsNeeds::in_forward, (std::vector<bool>{false, false}));
  }
  std::string msg = error_of([&] { BadNeedsIndex::apply(a, 2.0); });
  EXPECT_TRUE(contains(msg, "needs_input_grad(1): forward has 1 Tensor argument(s)")) << msg;
}

namespace {
struct ManyArgs : Function<ManyArgs> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, int64_t n, bool flag, const std::string& mode,
                        const Shape& shape, const std::optional<Tensor>& bias, const TensorList& extra, float f) {
    ctx->saved_data["n"] = n;
    ctx->saved_data["flag"] = flag;
    ctx->saved_data["mode"] = mode;
    ctx->saved_data["shape"] = shape;
    ctx->saved_data["f"] = f;
    ctx->saved_data["has_bias"] = bias.has_value();
    ctx->saved_data["t"] = extra[0];
    Tensor out = x * double(n) + extra[0] + extra[1];
    if (bias) out = out + *bias;
    return out;
  }
  static TensorList backward(AutogradContext* ctx, TensorList g) {
    EXPECT_EQ(ctx->saved_data["n"].toInt(), 3);
    EXPECT_TRUE(ctx->saved_data["flag"].toBool());
    EXPECT_EQ(ctx->saved_data["mode"].toStringRef(), "sum");
    EXPECT_EQ(ctx->saved_data["shape"].toShape(), Shape({2, 2}));
    EXPECT_DOUBLE_EQ(ctx->saved_data["f"].toDouble(), 0.5);
    EXPECT_TRUE(ctx->saved_data["t"].isTensor());
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    // x, n, flag, mode, shape, bias, extra[0], extra[1], f
    return {g[0] * 3.0, Tensor(), Tensor(), Tensor(), Tensor(), has_bias ? g[0] : Tensor(), g[0], g[0], Tensor()};
  }
};
}  // namespace

TEST(CustomFunction, NonTensorArgumentsAndSavedData) {
  Tensor x = R({2, 2}), e0 = R({2, 2}), e1 = R({2, 2}, false), bias = R({2, 2});
  Tensor out = ManyArgs::apply(x, int64_t(3), true, std::string("sum"), Shape({2, 2}), std::optional<Tensor>(bias),
                               TensorList{e0, e1}, 0.5f);
  EXPECT_EQ(out.grad_fn()->next_edges().size(), 4u);  // x, bias, e0, e1
  out.sum().backward();
  EXPECT_TRUE(x.grad().allclose(full({2, 2}, 3.0, f64(false))));
  EXPECT_TRUE(bias.grad().allclose(ones({2, 2}, f64(false))));
  EXPECT_TRUE(e0.grad().allclose(ones({2, 2}, f64(false))));
  Tensor x2 = R({2, 2});
  ManyArgs::apply(x2, int64_t(3), true, "sum", Shape({2, 2}), std::optional<Tensor>(), TensorList{e0, e1}, 0.5f)
      .sum()
      .backward();
  EXPECT_TRUE(x2.grad().allclose(full({2, 2}, 3.0, f64(false))));

  autograd::IValue v = 2;
  EXPECT_TRUE(v.isInt());
  EXPECT_DOUBLE_EQ(v.toDouble(), 2.0);
  std::string msg = error_of([&] { v.toTensor(); });
  EXPECT_TRUE(contains(msg, "[saved_data] expected a value of type Tensor, but it holds int")) << msg;
  EXPECT_TRUE(autograd::IValue().isNone());
  EXPECT_TRUE(autograd::IValue("s").isString());
  EXPECT_TRUE(autograd::IValue(1.5f).isDouble());
  EXPECT_TRUE(autograd::IValue(false).isBool());
}

namespace {
// A module whose forward is a custom function with a learnable per-feature scale.
struct SiLUScaled : nn::Module {
  explicit SiLUScaled(int64_t features) { scale = register_parameter("scale", ones({features})); }
  Tensor forward(const Tensor& x) override { return ScaledSiLU::apply(x, scale); }
  Tensor scale;
};
}  // namespace

TEST(CustomFunction, InsideModuleWithHooks) {
  manual_seed(4);
  auto net = nn::make<nn::Sequential>(nn::make<nn::Linear>(3, 4), nn::make<SiLUScaled>(4), nn::make<nn::Linear>(4, 2));
  Tensor x = randn({5, 3});
  int forward_calls = 0;
  std::string grad_fn_name;
  TensorList grad_in, grad_out;
  nn::ScopedHook fh = net->at(1).register_forward_hook([&](nn::Module&, const nn::TensorList&, nn::TensorList& out) {
    ++forward_calls;
    grad_fn_name = out[0].grad_fn() ? out[0].grad_fn()->name() : "";
  });
  nn::ScopedHook bh = net->at(1).register_full_backward_hook(
      [&](nn::Module&, nn::TensorList& gi, const nn::TensorList& go) {
        grad_in = gi;
        grad_out = go;
      });
  Tensor h = net->at(0).forward(x).detach().requires_grad_();
  net(x).sum().backward();
  EXPECT_EQ(forward_calls, 1);
  EXPECT_EQ(grad_fn_name, "CppNode<ScaledSiLU>");
  ASSERT_EQ(grad_in.size(), 1u);
  ASSERT_EQ(grad_out.size(), 1u);
  // The hook's grad_input is the gradient the custom backward computed for the module's input.
  auto& lin2 = net->at<nn::Linear>(2);
  Tensor go = ones({5, 2}).matmul(lin2.weight.detach());
  EXPECT_TRUE(grad_out[0].allclose(go, 1e-5, 1e-5));
  auto& silu = net->at<SiLUScaled>(1);
  Tensor s = h.detach().sigmoid();
  Tensor expected_gi = go * silu.scale.detach() * (s + h.detach() * s * (1.0 - s));
  EXPECT_TRUE(grad_in[0].allclose(expected_gi, 1e-5, 1e-5));
  ASSERT_TRUE(silu.scale.grad().defined());
  EXPECT_TRUE(silu.scale.grad().allclose((go * h.detach() * s).sum(0), 1e-4, 1e-5));
  // The same net with a built-in layer in its place gives the same parameter gradients.
  ASSERT_TRUE(net->at<nn::Linear>(0).weight.grad().defined());
}

TEST(CustomFunction, NoReferenceCycles) {
  // Saved outputs (including a dirty input and output 1 of two) do not keep their node alive.
  Tensor x = R({3});
  std::weak_ptr<autograd::Node> exp_node, two_node, dirty_node;
  {
    Tensor y = Exp::apply(x);
    exp_node = y.grad_fn();
    auto two = TwoOutputs::apply(x);
    two_node = two[0].grad_fn();
    Tensor a = x * 1.0;
    MulInPlace::apply(a, 2.0);
    dirty_node = a.grad_fn();
    EXPECT_FALSE(exp_node.expired());
    EXPECT_FALSE(two_node.expired());
    EXPECT_FALSE(dirty_node.expired());
  }
  EXPECT_TRUE(exp_node.expired());
  EXPECT_TRUE(two_node.expired());
  EXPECT_TRUE(dirty_node.expired());
}
