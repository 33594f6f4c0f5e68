// The CUDA backend against the CPU: elementwise ops (src/ops/elementwise.cpp, cuda/elementwise.cu).
// Helpers, fixtures and tolerances: cuda_util.h.
#include "cuda/cuda_util.h"

// ---- elementwise ----

TEST_F(Cuda, UnaryOps) {
  struct Unary {
    const char* name;
    Tensor (*fn)(const Tensor&);
    bool positive;  // needs inputs > 0
  };
  const Unary ops[] = {
      {"neg", [](const Tensor& t) { return t.neg(); }, false},
      {"abs", [](const Tensor& t) { return t.abs(); }, false},
      {"exp", [](const Tensor& t) { return t.exp(); }, false},
      {"log", [](const Tensor& t) { return t.log(); }, true},
      {"log1p", [](const Tensor& t) { return log1p(t); }, true},
      {"log1p near 0", [](const Tensor& t) { return log1p(t * 1e-4); }, false},
      {"expm1", [](const Tensor& t) { return expm1(t); }, false},
      {"expm1 near 0", [](const Tensor& t) { return expm1(t * 1e-4); }, false},
      {"sqrt", [](const Tensor& t) { return t.sqrt(); }, true},
      {"rsqrt", [](const Tensor& t) { return t.rsqrt(); }, true},
      {"sin", [](const Tensor& t) { return t.sin(); }, false},
      {"cos", [](const Tensor& t) { return t.cos(); }, false},
      {"tanh", [](const Tensor& t) { return t.tanh(); }, false},
      {"sigmoid", [](const Tensor& t) { return t.sigmoid(); }, false},
      {"sigmoid large", [](const Tensor& t) { return (t * 50.0).sigmoid(); }, false},
      {"relu", [](const Tensor& t) { return t.relu(); }, false},
      {"gelu", [](const Tensor& t) { return t.gelu(); }, false},
      {"gelu tanh", [](const Tensor& t) { return t.gelu("tanh"); }, false},
      {"erf", [](const Tensor& t) { return t.erf(); }, false},
      {"square", [](const Tensor& t) { return t.square(); }, false},
      {"reciprocal", [](const Tensor& t) { return t.reciprocal(); }, true},
      {"sign", [](const Tensor& t) { return t.sign(); }, false},
      {"silu", [](const Tensor& t) { return F::silu(t); }, false},
      {"leaky_relu", [](const Tensor& t) { return F::leaky_relu(t, 0.2); }, false},
  };
  for (Dtype dt : kFloatTypes)
    for (const Unary& u : ops) {
      Tensor x = u.positive ? pos_leaf({3, 4, 5}, dt) : leaf({3, 4, 5}, dt);
      auto fn = u.fn;
      std::string name = std::string(u.name) + " " + std::string(dtype_name(dt));
      check_op(name, [fn](const TensorList& v) { return fn(v[0]); }, {x});
      check_op(name + " (strided input)", [fn](const TensorList& v) { return fn(v[0].transpose(0, 2)); }, {x});
    }
  // Integer inputs where they are defined.
  Tensor i = randint(-5, 6, {4, 5});
  check_op("neg int64", OP(x[0].neg()), {i});
  check_op("abs int64", OP(x[0].abs()), {i});
  check_op("sign int64", OP(x[0].sign()), {i});
  check_op("square int64", OP(x[0].square()), {i});
  check_op("logical_not", OP(x[0].logical_not()), {i > 0.0});
  check_op("logical_not of floats", OP(x[0].logical_not()), {randint(0, 2, {7}).to(kFloat32)});
}

TEST_F(Cuda, BinaryOpsWithBroadcastingAndScalars) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    const std::vector<std::pair<Shape, Shape>> shapes = {
        {{3, 4, 5}, {3, 4, 5}}, {{3, 1, 5}, {4, 1}}, {{}, {3, 4}}, {{2, 3}, {}}, {{1}, {6}}, {{5, 1, 1}, {1, 4, 3}}};
    for (auto& [sa, sb] : shapes) {
      Tensor a = leaf(sa, dt), b = leaf(sb, dt), pa = pos_leaf(sa, dt), pb = pos_leaf(sb, dt);
      check_op("add", OP(x[0] + x[1]), {a, b});
      check_op("add alpha", OP(add(x[0], x[1], -2.5)), {a, b});
      check_op("sub", OP(x[0] - x[1]), {a, b});
      check_op("sub alpha", OP(x[0].sub(x[1], 0.5)), {a, b});
      check_op("mul", OP(x[0] * x[1]), {a, b});
      check_op("div", OP(x[0] / x[1]), {a, pb});
      check_op("pow", OP(pow(x[0], x[1])), {pa, b});
      check_op("maximum", OP(maximum(x[0], x[1])), {a, b});
      check_op("minimum", OP(minimum(x[0], x[1])), {a, b});
      check_op("where", OP(where(x[0] > x[1], x[0], x[1] * 2.0)), {a, b});
      check_op("where scalar a", OP(where(x[0] > 0.0, 1.5, x[1])), {a, b});
      check_op("where scalar b", OP(where(x[1] < 0.0, x[0], -3.0)), {a, b});
    }
    Tensor a = leaf({4, 5}, dt), p = pos_leaf({4, 5}, dt);
    check_op("same input twice", OP(x[0] * x[0] + x[0]), {a});
    check_op("transposed operands", OP(x[0].t() * x[1].t() + x[0].t()), {a, leaf({4, 5}, dt)});
    check_op("add scalar", OP(x[0] + 2.5), {a});
    check_op("radd scalar", OP(2.5 + x[0]), {a});
    check_op("sub scalar", OP(x[0] - 1.5), {a});
    check_op("rsub scalar", OP(1.5 - x[0]), {a});
    check_op("mul scalar", OP(x[0] * 3.0), {a});
    check_op("div scalar", OP(x[0] / 4.0), {a});
    check_op("rdiv scalar", OP(2.0 / x[0]), {p});
    check_op("pow 2", OP(x[0].pow(2.0)), {a});
    check_op("pow 3", OP(x[0].pow(3.0)), {a});
    check_op("pow 0.5", OP(x[0].pow(0.5)), {p});
    check_op("pow -1.5", OP(x[0].pow(-1.5)), {p});
    check_op("pow 0", OP(x[0].pow(0.0)), {a});
    check_op("clamp", OP(x[0].clamp(-0.5, 0.5)), {a});
    check_op("clamp min", OP(clamp(x[0], -0.2)), {a});
    check_op("clamp max", OP(x[0].clamp(std::nullopt, 0.3)), {a});
  }
  // Type promotion across dtypes (gradients come back in each input's dtype).
  check_op("float32 + float64", OP(x[0] + x[1]), {leaf({3, 4}), leaf({4}, kFloat64)});
  check_op("float64 * float32", OP(x[0] * x[1]), {leaf({3, 4}, kFloat64), leaf({3, 1})});
  check_op("int64 + float32", OP(x[0] + x[1]), {randint(-3, 4, {3, 4}), leaf({3, 4})});
  check_op("int64 * float64", OP(x[0] * x[1]), {randint(-3, 4, {4}), leaf({2, 4}, kFloat64)});
  // Integer and bool arithmetic.
  Tensor i = randint(-50, 50, {4, 5}), j = randint(1, 9, {5});
  check_op("int64 add", OP(x[0] + x[1]), {i, j});
  check_op("int64 sub", OP(x[0] - x[1]), {i, j});
  check_op("int64 mul", OP(x[0] * x[1]), {i, j});
  check_op("int64 div", OP(x[0] / x[1]), {i, j});
  check_op("int64 add scalar", OP(x[0] + 3.0), {i});
  check_op("int64 mul scalar", OP(x[0] * 2.0), {i});
  check_op("int64 maximum", OP(maximum(x[0], x[1])), {i, j});
  check_op("int64 minimum", OP(minimum(x[0], x[1])), {i, j});
  check_op("int64 clamp", OP(x[0].clamp(-10, 10)), {i});
  check_op("int64 where", OP(where(x[0] > 0.0, x[0], x[1])), {i, j});
  check_op("bool + int64", OP(x[0] + x[1]), {i > 0.0, j});
  check_op("bool where", OP(where(x[0], x[1], x[2])), {randn({4, 1}) > 0.0, i > 5.0, i < 0.0});
}

TEST_F(Cuda, Comparisons) {
  for (Dtype dt : {kFloat32, kFloat64, kInt64}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor a = (randn({4, 5}) * 3).to(dt), b = (randn({5}) * 3).to(dt);
    // Some equal elements, so eq/le/ge have both outcomes.
    Tensor c = a.clone();
    c.slice(0, 0, 2).copy_(b.expand({2, 5}));
    for (auto& [l, r] : std::vector<std::pair<Tensor, Tensor>>{{a, b}, {c, b}, {c.t(), b.view({5, 1})}}) {
      check_op("eq", OP(x[0] == x[1]), {l, r});
      check_op("ne", OP(x[0] != x[1]), {l, r});
      check_op("lt", OP(x[0] < x[1]), {l, r});
      check_op("le", OP(x[0] <= x[1]), {l, r});
      check_op("gt", OP(x[0] > x[1]), {l, r});
      check_op("ge", OP(x[0] >= x[1]), {l, r});
    }
    check_op("eq scalar", OP(x[0] == 1.0), {a.clamp(-1, 1)});
    check_op("ne scalar", OP(x[0] != 0.0), {a.clamp(0, 1)});
    check_op("lt scalar", OP(x[0] < 0.5), {a});
    check_op("le scalar", OP(x[0] <= 0.0), {a});
    check_op("gt scalar", OP(x[0] > -0.5), {a});
    check_op("ge scalar", OP(x[0] >= 1.0), {a});
  }
  check_op("float32 vs float64", OP(x[0] < x[1]), {randn({6}), randn({6}, {.dtype = kFloat64})});
  check_op("int64 vs float32", OP(x[0] >= x[1]), {randint(-2, 3, {6}), randn({6})});
  check_op("bool eq", OP(x[0] == x[1]), {randn({6}) > 0.0, randn({6}) > 0.0});
}

TEST_F(Cuda, NanAndInfinity) {
  Tensor x = randn({4, 6});
  x.select(0, 1).select(0, 2).fill_(NAN);
  x.select(0, 2).select(0, 0).fill_(INFINITY);
  x.select(0, 3).select(0, 5).fill_(-INFINITY);
  x.requires_grad_();
  check_op("relu", OP(x[0].relu()), {x});
  check_op("clamp", OP(x[0].clamp(-1, 1)), {x});
  check_op("maximum", OP(maximum(x[0], x[1])), {x, leaf({6})});
  check_op("minimum", OP(minimum(x[1], x[0])), {x, leaf({6})});
  check_op("sigmoid", OP(x[0].sigmoid()), {x});
  check_op("tanh", OP(x[0].tanh()), {x});
  check_op("exp", OP(x[0].exp()), {x});
  check_op("sign", OP(x[0].sign()), {x});
  check_op("mul by 0", OP(x[0] * 0.0), {x});
  check_op("eq self", OP(x[0] == x[0]), {x});
  check_op("ne self", OP(x[0] != x[0]), {x});
  check_op("log of negatives", OP(x[0].log()), {leaf({3, 3})});
  check_op("sqrt of negatives", OP(x[0].sqrt()), {leaf({3, 3})});
  check_op("div by zero", OP(x[0] / x[1]), {leaf({5}), zeros({5})});
  check_op("reciprocal of zero", OP(x[0].reciprocal()), {zeros({2})});
}

TEST_F(Cuda, InPlaceOpsAndVersionCounter) {
  using InPlace = std::function<void(Tensor&, const Tensor&)>;
  const std::vector<std::pair<std::string, InPlace>> ops = {
      {"add_", [](Tensor& s, const Tensor& o) { s.add_(o); }},
      {"add_ alpha", [](Tensor& s, const Tensor& o) { s.add_(o, -0.5); }},
      {"add_ scalar", [](Tensor& s, const Tensor&) { s.add_(1.5); }},
      {"sub_", [](Tensor& s, const Tensor& o) { s.sub_(o); }},
      {"sub_ scalar", [](Tensor& s, const Tensor&) { s.sub_(2.0); }},
      {"mul_", [](Tensor& s, const Tensor& o) { s.mul_(o); }},
      {"mul_ scalar", [](Tensor& s, const Tensor&) { s.mul_(-3.0); }},
      {"div_", [](Tensor& s, const Tensor& o) { s.div_(o.abs() + 0.5); }},
      {"div_ scalar", [](Tensor& s, const Tensor&) { s.div_(4.0); }},
      {"clamp_", [](Tensor& s, const Tensor&) { s.clamp_(-0.3, 0.4); }},
      {"clamp_ min", [](Tensor& s, const Tensor&) { s.clamp_(0.1); }},
      {"relu_", [](Tensor& s, const Tensor&) { s.relu_(); }},
      {"fill_", [](Tensor& s, const Tensor&) { s.fill_(0.25); }},
      {"zero_", [](Tensor& s, const Tensor&) { s.zero_(); }},
      {"copy_", [](Tensor& s, const Tensor& o) { s.copy_(o); }},
      {"+=", [](Tensor& s, const Tensor& o) { s += o; }},
      {"-=", [](Tensor& s, const Tensor&) { s -= 1.0; }},
      {"*=", [](Tensor& s, const Tensor& o) { s *= o; }},
      {"/=", [](Tensor& s, const Tensor&) { s /= 8.0; }},
  };
  for (Dtype dt : kFloatTypes)
    for (auto& [name, op] : ops) {
      SCOPED_TRACE(name + " " + std::string(dtype_name(dt)));
      Tensor x = randn({4, 5}, {.dtype = dt}), o = randn({5}, {.dtype = dt});
      Tensor c = x.clone(), g = x.to(dev()), go = o.to(dev());
      uint32_t vc = c.version(), vg = g.version();
      op(c, o);
      op(g, go);
      EXPECT_TRUE(close(c, g));
      EXPECT_GT(c.version(), vc);
      EXPECT_EQ(g.version() - vg, c.version() - vc);
      // On a strided view: the base sees the change, and shares the version counter.
      Tensor cb = x.clone(), gb = x.to(dev());
      Tensor cv = cb.t().slice(0, 0, 5, 2), gv = gb.t().slice(0, 0, 5, 2);
      Tensor cov = o.slice(0, 0, 3).view({3, 1}), gov = cov.to(dev());
      uint32_t vbase = gb.version();
      op(cv, cov);
      op(gv, gov);
      EXPECT_TRUE(close(cb, gb));
      EXPECT_GT(gb.version(), vbase);
    }
  // In place on int64.
  Tensor i = randint(-9, 10, {3, 4});
  Tensor ci = i.clone(), gi = i.to(dev());
  ci.add_(ci);
  gi.add_(gi);
  ci.mul_(3.0);
  gi.mul_(3.0);
  ci.clamp_(-20, 20);
  gi.clamp_(-20, 20);
  EXPECT_TRUE(close(ci, gi));
  // Autograd through in-place ops, and the version check on saved tensors.
  check_op("mul_ in a graph", [](const TensorList& x) {
    Tensor y = x[0] * 1.0;
    y.mul_(x[1]);
    y.add_(2.0);
    return y;
  }, {leaf({3, 4}), leaf({4})});
  check_op("relu_ in a graph", [](const TensorList& x) {
    Tensor y = x[0] + 0.0;
    y.relu_();
    return y * x[0];
  }, {leaf({5})});
  Tensor a = randn({3}, {.device = dev(), .requires_grad = true});
  Tensor e = a.exp();  // saves its output
  {
    NoGradGuard ng;
    e.add_(1.0);
  }
  EXPECT_NE(error_of([&] { e.sum().backward(); }), "<no error>");
  EXPECT_NE(error_of([&] { a.add_(1.0); }), "<no error>");  // a leaf that requires grad
}
