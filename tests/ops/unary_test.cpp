// The unary ops of src/ops/unary_ops.h against float64 references of the C library and against
// their own finite differences (gradcheck), on random inputs inside each op's domain; strided
// and integer inputs. LibTorch parity for each op is in tests/parity (UnaryOpsOneByOne).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <nnkit/nnkit.h>

namespace nk = nnkit;

namespace {

struct Case {
  const char* name;
  double lo, hi;  // the input range
  std::function<nk::Tensor(const nk::Tensor&)> op;
  double (*ref)(double);
};

double ref_sigmoid(double v) { return 1 / (1 + std::exp(-v)); }
double ref_relu(double v) { return v > 0 ? v : 0; }
double ref_neg(double v) { return -v; }
double ref_square(double v) { return v * v; }
double ref_recip(double v) { return 1 / v; }
double ref_rsqrt(double v) { return 1 / std::sqrt(v); }
double ref_sign(double v) { return double((0 < v) - (v < 0)); }
double ref_abs(double v) { return std::fabs(v); }

#define NNKIT_UNARY_CASE(fn, lo, hi, ref) \
  Case { #fn, lo, hi, [](const nk::Tensor& x) { return nk::fn(x); }, ref }

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      NNKIT_UNARY_CASE(neg, -3, 3, ref_neg),
      NNKIT_UNARY_CASE(abs, -3, 3, ref_abs),
      NNKIT_UNARY_CASE(exp, -3, 3, [](double v) { return std::exp(v); }),
      NNKIT_UNARY_CASE(log, 0.1, 4, [](double v) { return std::log(v); }),
      NNKIT_UNARY_CASE(log1p, -0.5, 3, [](double v) { return std::log1p(v); }),
      NNKIT_UNARY_CASE(expm1, -2, 2, [](double v) { return std::expm1(v); }),
      NNKIT_UNARY_CASE(log2, 0.1, 4, [](double v) { return std::log2(v); }),
      NNKIT_UNARY_CASE(log10, 0.1, 4, [](double v) { return std::log10(v); }),
      NNKIT_UNARY_CASE(exp2, -3, 3, [](double v) { return std::exp2(v); }),
      NNKIT_UNARY_CASE(tan, -1.2, 1.2, [](double v) { return std::tan(v); }),
      NNKIT_UNARY_CASE(sqrt, 0.1, 4, [](double v) { return std::sqrt(v); }),
      NNKIT_UNARY_CASE(rsqrt, 0.1, 4, ref_rsqrt),
      NNKIT_UNARY_CASE(sin, -3, 3, [](double v) { return std::sin(v); }),
      NNKIT_UNARY_CASE(cos, -3, 3, [](double v) { return std::cos(v); }),
      NNKIT_UNARY_CASE(tanh, -3, 3, [](double v) { return std::tanh(v); }),
      NNKIT_UNARY_CASE(sigmoid, -3, 3, ref_sigmoid),
      NNKIT_UNARY_CASE(relu, -3, 3, ref_relu),
      NNKIT_UNARY_CASE(erf, -2, 2, [](double v) { return std::erf(v); }),
      NNKIT_UNARY_CASE(square, -3, 3, ref_square),
      NNKIT_UNARY_CASE(reciprocal, 0.2, 3, ref_recip),
      NNKIT_UNARY_CASE(sign, -3, 3, ref_sign),
  };
  return c;
}

nk::Tensor uniform_in(const nk::Shape& s, double lo, double hi, nk::Dtype d) {
  return (nk::rand(s, {.dtype = nk::kFloat64}) * (hi - lo) + lo).to(d);
}

}  // namespace

TEST(UnaryOps, ValuesMatchFloat64ReferenceOnBothFloatTypes) {
  nk::manual_seed(11);
  for (const Case& c : cases())
    for (nk::Dtype d : {nk::kFloat32, nk::kFloat64}) {
      nk::Tensor x = uniform_in({3, 40}, c.lo, c.hi, d);
      nk::Tensor y = c.op(x);
      ASSERT_EQ(y.dtype(), d) << c.name;
      std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
      for (size_t i = 0; i < xv.size(); ++i) {
        double want = c.ref(xv[i]);
        double tol = (d == nk::kFloat64 ? 1e-14 : 2e-6) * std::max(1.0, std::fabs(want));
        ASSERT_NEAR(yv[i], want, tol) << c.name << " at " << xv[i] << " (" << d << ")";
      }
    }
}

TEST(UnaryOps, StridedInputsGiveTheContiguousResult) {
  nk::manual_seed(12);
  for (const Case& c : cases()) {
    nk::Tensor base = uniform_in({6, 10}, c.lo, c.hi, nk::kFloat32);
    nk::Tensor view = base.t().slice(0, 1, 9, 3);  // non-contiguous, offset
    nk::Tensor got = c.op(view), want = c.op(view.contiguous());
    EXPECT_TRUE(nk::allclose(got, want, 0, 0)) << c.name;
  }
}

TEST(UnaryOps, GradientsMatchFiniteDifferences) {
  nk::manual_seed(13);
  for (const Case& c : cases()) {
    if (std::string(c.name) == "sign") continue;  // piecewise constant: zero gradient, tested below
    // Keep away from the kinks of abs and relu, where finite differences are meaningless.
    nk::Tensor x = uniform_in({2, 5}, c.lo, c.hi, nk::kFloat64);
    if (std::string(c.name) == "abs" || std::string(c.name) == "relu") x = x + x.sign() * 0.1;
    x.requires_grad_(true);
    auto r = nk::autograd::gradcheck([&](const nk::TensorList& v) { return c.op(v[0]); }, {x});
    EXPECT_TRUE(r.ok) << c.name << ": " << r.message;
  }
  nk::Tensor x = nk::randn({4}, {.dtype = nk::kFloat64}).requires_grad_(true);
  nk::sign(x).sum().backward();
  EXPECT_TRUE(nk::allclose(x.grad(), nk::zeros({4}, {.dtype = nk::kFloat64}), 0, 0));
}

TEST(UnaryOps, IntegerInputsFollowPyTorchsDtypeRule) {
  nk::Tensor xi = nk::from_vector(std::vector<int64_t>{1, 2, 4, 8});
  EXPECT_EQ(nk::log2(xi).dtype(), nk::kFloat32);  // computed in float32, as PyTorch
  EXPECT_TRUE(nk::allclose(nk::log2(xi), nk::from_vector(std::vector<float>{0, 1, 2, 3})));
  EXPECT_EQ(nk::abs(xi).dtype(), nk::kInt64);      // stays an integer
  EXPECT_EQ(nk::square(xi).to_vector<double>(), (std::vector<double>{1, 4, 16, 64}));
  // Bool inputs: float ops compute in float32 (as PyTorch's exp2(bool)); the others refuse, as
  // PyTorch refuses negating a bool tensor.
  nk::Tensor b = nk::from_vector(std::vector<bool>{true, false});
  EXPECT_EQ(nk::exp2(b).to_vector<double>(), (std::vector<double>{2, 1}));
  try {
    nk::neg(b);
    FAIL() << "neg of a bool tensor must throw";
  } catch (const nk::Error& e) {
    EXPECT_NE(std::string(e.what()).find("[neg] not implemented for bool tensors"), std::string::npos) << e.what();
  }
}

TEST(UnaryOps, NodesAreNamedAsPyTorchNamesThem) {
  nk::Tensor x = nk::rand({3}).add(0.5).requires_grad_(true);
  EXPECT_EQ(nk::log2(x).grad_fn()->name(), "Log2Backward0");
  EXPECT_EQ(nk::tan(x).grad_fn()->name(), "TanBackward0");
  EXPECT_EQ(x.exp2().grad_fn()->name(), "Exp2Backward0");
  EXPECT_EQ(x.log10().grad_fn()->name(), "Log10Backward0");
}
