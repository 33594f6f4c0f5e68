// Parity with LibTorch: elementwise ops (src/ops/elementwise.cpp, unary_ops.h), float32 and float64
// (helpers and tolerances: parity_util.h).
#include "parity/parity_util.h"

using namespace parity;

namespace {
class ParityElementwise : public DtypeTest {};
}  // namespace

TEST_P(ParityElementwise, BinaryAndUnaryCompositions) {
  auto d = GetParam();
  std::mt19937 rng(7);
  for (int rep = 0; rep < 3; ++rep) {
    int64_t a = 1 + rng() % 5, b = 1 + rng() % 6;
    check_op("add/sub/mul/div broadcast", {R({a, 1, b}, d), R({3, 1}, d)},
             [](auto& v) { return v[0] + v[1] * 2.0 - v[0] / (v[1].abs() + 1.0) + nk::sub(v[0], v[1], 0.5); },
             [](auto& v) { return v[0] + v[1] * 2.0 - v[0] / (v[1].abs() + 1.0) + torch::sub(v[0], v[1], 0.5); });
  }
  check_op("unary", {R({4, 5}, d)},
           [](auto& v) { return v[0].exp() + v[0].sin() + v[0].cos() + v[0].tanh() + v[0].sigmoid() + v[0].relu() + v[0].neg(); },
           [](auto& v) { return v[0].exp() + v[0].sin() + v[0].cos() + v[0].tanh() + v[0].sigmoid() + v[0].relu() + v[0].neg(); });
  check_op("log/sqrt/rsqrt/abs", {R({6, 3}, d)},
           [](auto& v) { auto p = v[0].abs() + 0.5; return p.log() + p.sqrt() + p.rsqrt() + p.reciprocal(); },
           [](auto& v) { auto p = v[0].abs() + 0.5; return p.log() + p.sqrt() + p.rsqrt() + p.reciprocal(); });
  check_op("gelu/erf", {R({7, 2}, d)}, [](auto& v) { return v[0].gelu() + v[0].gelu("tanh") * 2.0 + v[0].erf(); },
           [](auto& v) { return torch::gelu(v[0]) + torch::gelu(v[0], "tanh") * 2.0 + torch::erf(v[0]); });
  check_op("pow", {R({3, 4}, d), R({4}, d)},
           [](auto& v) { return nk::pow(v[0].abs() + 0.5, v[1]) + v[0].pow(3.0) + (v[0].abs() + 0.1).pow(0.5); },
           [](auto& v) { return torch::pow(v[0].abs() + 0.5, v[1]) + v[0].pow(3.0) + (v[0].abs() + 0.1).pow(0.5); });
  check_op("maximum/minimum/where/clamp", {R({4, 3}, d), R({3}, d)},
           [](auto& v) { return nk::maximum(v[0], v[1]) + nk::minimum(v[0], v[1]) * 3.0 + nk::where(v[0] > 0.0, v[0], v[1]) + v[0].clamp(-0.3, 0.4); },
           [](auto& v) { return torch::maximum(v[0], v[1]) + torch::minimum(v[0], v[1]) * 3.0 + torch::where(v[0] > 0.0, v[0], v[1]) + v[0].clamp(-0.3, 0.4); });
  check_op("strided operands", {R({5, 8}, d), R({8, 5}, d)},
           [](auto& v) { return v[0].t().slice(0, 1, 7, 2) * v[1].slice(0, 1, 7, 2) + v[0].t().slice(0, 0, 3).exp(); },
           [](auto& v) { return v[0].t().slice(0, 1, 7, 2) * v[1].slice(0, 1, 7, 2) + v[0].t().slice(0, 0, 3).exp(); });
}

// Every unary op alone (a sum of several can hide one small term's error), on inputs inside
// its domain: positive for the logarithms and roots, (-1.2, 1.2) for tan.
TEST_P(ParityElementwise, UnaryOpsOneByOne) {
  auto d = GetParam();
  enum Domain { Any, Positive, Small };
  struct Case {
    const char* name;
    Domain domain;
    std::function<nk::Tensor(const nk::Tensor&)> nf;
    std::function<torch::Tensor(const torch::Tensor&)> tf;
  };
#define NNKIT_PARITY_UNARY(fn, dom) \
  Case{#fn, dom, [](const nk::Tensor& x) { return x.fn(); }, [](const torch::Tensor& x) { return x.fn(); }}
  const std::vector<Case> cases = {
      NNKIT_PARITY_UNARY(neg, Any),      NNKIT_PARITY_UNARY(abs, Any),        NNKIT_PARITY_UNARY(exp, Any),
      NNKIT_PARITY_UNARY(log, Positive), NNKIT_PARITY_UNARY(log1p, Positive), NNKIT_PARITY_UNARY(expm1, Any),
      NNKIT_PARITY_UNARY(log2, Positive), NNKIT_PARITY_UNARY(log10, Positive), NNKIT_PARITY_UNARY(exp2, Any),
      NNKIT_PARITY_UNARY(tan, Small),    NNKIT_PARITY_UNARY(sqrt, Positive),  NNKIT_PARITY_UNARY(rsqrt, Positive),
      NNKIT_PARITY_UNARY(sin, Any),      NNKIT_PARITY_UNARY(cos, Any),        NNKIT_PARITY_UNARY(tanh, Any),
      NNKIT_PARITY_UNARY(sigmoid, Any),  NNKIT_PARITY_UNARY(relu, Any),       NNKIT_PARITY_UNARY(erf, Any),
      NNKIT_PARITY_UNARY(square, Any),   NNKIT_PARITY_UNARY(reciprocal, Positive), NNKIT_PARITY_UNARY(sign, Any),
      Case{"gelu", Any, [](const nk::Tensor& x) { return x.gelu(); }, [](const torch::Tensor& x) { return torch::gelu(x); }},
      Case{"gelu(tanh)", Any, [](const nk::Tensor& x) { return x.gelu("tanh"); },
           [](const torch::Tensor& x) { return torch::gelu(x, "tanh"); }},
  };
#undef NNKIT_PARITY_UNARY
  for (const Case& c : cases) {
    nk::Tensor x = R({5, 7}, d);
    if (c.domain == Positive) x = x.abs() + 0.25;
    if (c.domain == Small) x = x.tanh() * 1.2;
    check_op(c.name, {x}, [&](auto& v) { return c.nf(v[0]); }, [&](auto& v) { return c.tf(v[0]); });
    // Integer inputs: the same dtype rule as PyTorch (exp of int64 is float32, abs stays int64);
    // LibTorch has no integer gelu (nnkit computes it in float32).
    if (std::string(c.name).rfind("gelu", 0) == 0) continue;
    nk::Tensor xi = (x * 3.0).to(nk::kInt64);
    if (c.domain == Positive) xi = xi.abs() + 1.0;
    nk::Tensor ni = c.nf(xi);
    torch::Tensor ti = c.tf(to_torch(xi));
    EXPECT_EQ(std::string(nk::dtype_name(ni.dtype())), std::string(c10::toString(ti.scalar_type())) == "Long" ? "int64"
              : std::string(c10::toString(ti.scalar_type())) == "Float" ? "float32" : "other")
        << c.name << " on int64";
    EXPECT_LE(rel_err(ni, ti), 1e-5) << c.name << " on int64";
  }
}

NNKIT_PARITY_DTYPES(ParityElementwise);
