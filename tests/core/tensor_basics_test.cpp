// Tensor core: factories, views sharing storage, copies, versions, broadcasting, promotion,
// reductions and matmul against float64 reference loops, printing, errors.
#include <gtest/gtest.h>

#include "test_util.h"

#include <cmath>
#include <nnkit/fmt.h>
#include <nnkit/nnkit.h>

using namespace nnkit;

using nnkit::test_util::error_of;

TEST(TensorBasics, FactoriesAndOptions) {
  Tensor z = zeros({2, 3});
  EXPECT_EQ(z.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(z.dtype(), kFloat32);
  EXPECT_EQ(z.sum().item<float>(), 0.f);
  EXPECT_EQ(ones({4}, {.dtype = kFloat64}).dtype(), kFloat64);
  EXPECT_EQ(full({2}, 3.5).to_vector<float>(), (std::vector<float>{3.5f, 3.5f}));
  EXPECT_EQ(arange(5).dtype(), kInt64);
  EXPECT_EQ(arange(5).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(0.0, 1.0, 0.25).to_vector<float>(), (std::vector<float>{0, .25f, .5f, .75f}));
  EXPECT_EQ(linspace(0, 1, 5).to_vector<float>(), (std::vector<float>{0, .25f, .5f, .75f, 1}));
  EXPECT_EQ(eye(2, 3).to_vector<float>(), (std::vector<float>{1, 0, 0, 0, 1, 0}));
  Tensor r = ones({2}, {.requires_grad = true});
  EXPECT_TRUE(r.requires_grad());
  EXPECT_TRUE(r.is_leaf());
  EXPECT_NE(error_of([] { zeros({2, -1}); }).find("[empty] negative dimension"), std::string::npos);
}

TEST(TensorBasics, RandomIsSeededAndDistributed) {
  manual_seed(42);
  Tensor a = randn({100000}, {.dtype = kFloat64});
  manual_seed(42);
  Tensor b = randn({100000}, {.dtype = kFloat64});
  EXPECT_TRUE(equal(a, b));
  EXPECT_NEAR(a.mean().item<double>(), 0.0, 0.02);
  EXPECT_NEAR(a.std().item<double>(), 1.0, 0.02);
  Tensor u = rand({100000});
  EXPECT_GE(u.min().item<float>(), 0.f);
  EXPECT_LT(u.max().item<float>(), 1.f);
  EXPECT_NEAR(u.mean().item<double>(), 0.5, 0.01);
  Tensor ri = randint(3, 7, {10000});
  EXPECT_EQ(ri.dtype(), kInt64);
  EXPECT_EQ(ri.min().item<int64_t>(), 3);
  EXPECT_EQ(ri.max().item<int64_t>(), 6);
}

TEST(TensorBasics, ViewsShareStorageAndVersions) {
  Tensor x = arange(24, {.dtype = kFloat32}).view({2, 3, 4});
  Tensor t = x.transpose(0, 2);
  EXPECT_TRUE(t.is_alias_of(x));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{4, 3, 2}));
  EXPECT_EQ(t.select(0, 1).select(0, 2).select(0, 1).item<float>(), 21.f);  // x[1, 2, 1]
  Tensor s = x.slice(2, 1, 4, 2);  // x[:, :, 1::2]
  EXPECT_EQ(s.sizes(), (std::vector<int64_t>{2, 3, 2}));
  EXPECT_EQ(s.contiguous().to_vector<float>()[1], 3.f);
  uint32_t v0 = x.version();
  s.fill_(-1);
  EXPECT_GT(x.version(), v0);
  EXPECT_EQ(x.view({-1})[1].item<float>(), -1.f);
  Tensor d = x.detach();
  EXPECT_TRUE(d.is_alias_of(x));
  EXPECT_EQ(d.version(), x.version());
  Tensor c = x.clone();
  EXPECT_FALSE(c.is_alias_of(x));
  EXPECT_EQ(x.unsqueeze(1).sizes(), (std::vector<int64_t>{2, 1, 3, 4}));
  EXPECT_EQ(x.unsqueeze(1).squeeze().sizes(), x.sizes());
  EXPECT_EQ(x.flatten(1).sizes(), (std::vector<int64_t>{2, 12}));
  EXPECT_EQ(x.flatten(1).unflatten(1, {3, 4}).sizes(), x.sizes());
  EXPECT_EQ(x.permute({2, 0, 1}).sizes(), (std::vector<int64_t>{4, 2, 3}));
  EXPECT_EQ(ones({3, 1}).expand({3, 4}).stride(1), 0);
  EXPECT_NE(error_of([&] { t.view({24}); }).find("[view]"), std::string::npos);
  EXPECT_EQ(t.reshape({24}).numel(), 24);
}

TEST(TensorBasics, BroadcastingPromotionAndStrides) {
  manual_seed(1);
  Tensor a = randn({3, 1, 4}, {.dtype = kFloat64});
  Tensor b = randn({2, 1}, {.dtype = kFloat64});
  Tensor c = a * b + a / (b.abs() + 1.0);
  ASSERT_EQ(c.sizes(), (std::vector<int64_t>{3, 2, 4}));
  auto av = a.to_vector<double>(), bv = b.to_vector<double>(), cv = c.to_vector<double>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 4; ++k) {
        double x = av[size_t(i * 4 + k)], y = bv[size_t(j)];
        EXPECT_NEAR(cv[size_t((i * 2 + j) * 4 + k)], x * y + x / (std::abs(y) + 1), 1e-12);
      }
  EXPECT_EQ((arange(3) + ones({3})).dtype(), kFloat32);
  EXPECT_EQ((arange(3) * 2).dtype(), kInt64);
  EXPECT_EQ((arange(3) * 0.5).dtype(), kFloat32);
  EXPECT_EQ((arange(3) / 2).dtype(), kFloat32);
  EXPECT_EQ((ones({2}) + ones({2}, {.dtype = kFloat64})).dtype(), kFloat64);
  // A strided (transposed) operand gives the same result as its contiguous copy.
  Tensor m = randn({64, 300});
  EXPECT_TRUE(equal((m.t() * 2.0 + 1.0), (m.t().contiguous() * 2.0 + 1.0)));
  EXPECT_NE(error_of([] { ones({2, 3}) + ones({4}); }).find("[add] shapes [2, 3] and [4] cannot be broadcast"),
            std::string::npos);
  // Long runs with broadcast operands (stride 0 along the run: a scalar, an expanded
  // gradient, a column) take the chunked loop; lengths around its 256-element chunk.
  for (int64_t n : {63, 64, 255, 256, 257, 1000}) {
    Tensor x = randn({3, n}), col = randn({3, 1}), s = randn({1});
    Tensor cond = x > 0.0;
    auto xv = x.to_vector<float>(), cv = col.to_vector<float>();
    const float sv = s.item<float>();
    auto w = where(cond, x, s).to_vector<float>();
    auto p = (x * col).to_vector<float>();
    auto r = (s.expand({3, n}) - x).to_vector<float>();
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < n; ++j) {
        const size_t k = size_t(i * n + j);
        ASSERT_EQ(w[k], xv[k] > 0 ? xv[k] : sv) << n;
        ASSERT_EQ(p[k], xv[k] * cv[size_t(i)]) << n;
        ASSERT_EQ(r[k], sv - xv[k]) << n;
      }
  }
}

TEST(TensorBasics, ReductionsMatchReference) {
  manual_seed(2);
  Tensor x = randn({5, 6, 7}, {.dtype = kFloat64});
  auto v = x.to_vector<double>();
  Tensor s = x.sum({0, 2});
  Tensor var = x.var(1, 1, true);
  for (int j = 0; j < 6; ++j) {
    double ref = 0;
    for (int i = 0; i < 5; ++i)
      for (int k = 0; k < 7; ++k) ref += v[size_t((i * 6 + j) * 7 + k)];
    EXPECT_NEAR(s[j].item<double>(), ref, 1e-10);
  }
  for (int i = 0; i < 5; ++i)
    for (int k = 0; k < 7; ++k) {
      double m = 0, q = 0;
      for (int j = 0; j < 6; ++j) m += v[size_t((i * 6 + j) * 7 + k)] / 6;
      for (int j = 0; j < 6; ++j) q += std::pow(v[size_t((i * 6 + j) * 7 + k)] - m, 2) / 5;
      EXPECT_NEAR(var[i][0][k].item<double>(), q, 1e-10);
    }
  auto [mx, idx] = x.max(2);
  EXPECT_EQ(mx.sizes(), (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(x[1][2][idx[1][2].item<int64_t>()].item<double>(), mx[1][2].item<double>());
  EXPECT_EQ(x.argmax().item<int64_t>(), x.flatten().argmax(0).item<int64_t>());
  EXPECT_NEAR(x.mean().item<double>(), x.sum().item<double>() / 210, 1e-12);
  Tensor big = ones({300, 300});  // parallel path
  EXPECT_EQ(big.sum().item<float>(), 90000.f);
  EXPECT_EQ(big.sum(0)[7].item<float>(), 300.f);
}

TEST(TensorBasics, MatmulForms) {
  manual_seed(3);
  Tensor a = randn({2, 3, 4}, {.dtype = kFloat64}), b = randn({4, 5}, {.dtype = kFloat64});
  Tensor c = a.matmul(b);
  ASSERT_EQ(c.sizes(), (std::vector<int64_t>{2, 3, 5}));
  auto av = a.to_vector<double>(), bv = b.to_vector<double>(), cv = c.to_vector<double>();
  for (int n = 0; n < 2; ++n)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 5; ++j) {
        double r = 0;
        for (int k = 0; k < 4; ++k) r += av[size_t((n * 3 + i) * 4 + k)] * bv[size_t(k * 5 + j)];
        EXPECT_NEAR(cv[size_t((n * 3 + i) * 5 + j)], r, 1e-12);
      }
  EXPECT_EQ(randn({4}).matmul(randn({4})).dim(), 0);
  EXPECT_EQ(randn({3, 4}).matmul(randn({4})).sizes(), (std::vector<int64_t>{3}));
  EXPECT_EQ(randn({4}).matmul(randn({4, 2})).sizes(), (std::vector<int64_t>{2}));
  EXPECT_EQ(randn({2, 1, 3, 4}).matmul(randn({5, 4, 2})).sizes(), (std::vector<int64_t>{2, 5, 3, 2}));
  Tensor t = randn({5, 4}, {.dtype = kFloat64});
  EXPECT_TRUE(allclose(t.t().mm(t), t.t().contiguous().mm(t), 1e-12, 1e-12));
  EXPECT_EQ(error_of([] { randn({2, 3}).matmul(randn({4, 5})); }), "[matmul] shapes [2, 3] and [4, 5] cannot be multiplied");
}

// The CPU GEMM has three regimes: a register-tiled loop for small products (reading A in place
// when it is row- or column-major, copying it otherwise; packing B unless row-major), and the
// packed, blocked kernel whose tiles, K steps (KC = 512) and B panels (NC = 2048) have edges.
// Shapes here cross every edge, with row-major, transposed, sliced (no unit stride) and
// broadcast (stride 0) operands, in float32 and float64, against a float64 reference loop.
namespace {
enum Layout { kRowMajor, kTransposed, kSliced, kBroadcast };
Tensor operand(int64_t rows, int64_t cols, Layout l, Dtype dt) {
  switch (l) {
    case kRowMajor: return randn({rows, cols}, {.dtype = dt});
    case kTransposed: return randn({cols, rows + 2}, {.dtype = dt}).narrow(1, 1, rows).t();
    case kSliced: return randn({2 * rows, 2 * cols}, {.dtype = dt}).slice(0, 0, std::nullopt, 2).slice(1, 1, std::nullopt, 2);
    case kBroadcast: return randn({1, cols}, {.dtype = dt}).expand({rows, cols});
  }
  return {};
}
}  // namespace

TEST(TensorBasics, MatmulEveryKernelRegimeMatchesReference) {
  manual_seed(33);
  struct Case {
    int64_t m, k, n;
    Layout la, lb;
  };
  std::vector<Case> cases = {Case{3, 5, 7, kRowMajor, kRowMajor},       Case{17, 33, 9, kTransposed, kRowMajor},
                             Case{40, 40, 40, kRowMajor, kTransposed},  Case{67, 1100, 45, kRowMajor, kRowMajor},
                             Case{129, 70, 2100, kTransposed, kTransposed}, Case{8, 600, 33, kRowMajor, kTransposed},
                             Case{50, 30, 70, kSliced, kBroadcast}};
  // Small products: every A layout with every B layout, row counts that use each row-tile
  // height (16, 8, 4, 1) and column counts around one vector.
  for (int64_t m : {1, 7, 16, 29})
    for (int la = 0; la < 4; ++la)
      for (int lb = 0; lb < 4; ++lb) cases.push_back(Case{m, m == 29 ? 37 : 16, m == 7 ? 19 : 16, Layout(la), Layout(lb)});
  for (Case c : cases) {
    for (Dtype dt : {kFloat32, kFloat64}) {
      Tensor a = operand(c.m, c.k, c.la, dt);
      Tensor b = operand(c.k, c.n, c.lb, dt);
      Tensor out = a.mm(b);
      auto av = a.contiguous().to(kFloat64).to_vector<double>(), bv = b.contiguous().to(kFloat64).to_vector<double>();
      auto ov = out.to(kFloat64).to_vector<double>();
      double worst = 0;
      for (int64_t i = 0; i < c.m; ++i)
        for (int64_t j = 0; j < c.n; ++j) {
          double r = 0, mag = 0;
          for (int64_t k = 0; k < c.k; ++k) {
            r += av[size_t(i * c.k + k)] * bv[size_t(k * c.n + j)];
            mag += std::abs(av[size_t(i * c.k + k)] * bv[size_t(k * c.n + j)]);
          }
          worst = std::max(worst, std::abs(ov[size_t(i * c.n + j)] - r) / (mag + 1e-30));
        }
      EXPECT_LT(worst, dt == kFloat32 ? 1e-5 : 1e-13)
          << c.m << "x" << c.k << "x" << c.n << " layouts " << c.la << "," << c.lb << " " << dt;
    }
  }
}

TEST(TensorBasics, CatStackSoftmax) {
  Tensor a = ones({2, 3}), b = zeros({1, 3});
  Tensor c = cat({a, b}, 0);
  EXPECT_EQ(c.sizes(), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(c.sum().item<float>(), 6.f);
  EXPECT_EQ(stack({a, a}, 1).sizes(), (std::vector<int64_t>{2, 2, 3}));
  Tensor s = randn({4, 7}).softmax(1);
  EXPECT_TRUE(allclose(s.sum(1), ones({4}), 1e-6, 1e-6));
  Tensor ls = randn({4, 7}, {.dtype = kFloat64});
  EXPECT_TRUE(allclose(ls.log_softmax(0).exp(), ls.softmax(0), 1e-12, 1e-12));
}

TEST(TensorBasics, InPlaceOpsBumpVersion) {
  Tensor x = zeros({3});
  uint32_t v = x.version();
  x.add_(1.0);
  x.mul_(ones({3}) * 3);
  x += 1;
  x.sub_(ones({1}), 2);
  x.div_(2.0);
  x.clamp_(0.0, 0.5);
  EXPECT_EQ(x.version(), v + 6);
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{0.5f, 0.5f, 0.5f}));
  EXPECT_NE(error_of([&] { x.add_(ones({2, 3})); }).find("[add_]"), std::string::npos);
}

TEST(TensorBasics, PrintsLikePyTorch) {
  // Expected strings from PyTorch 1.13: repr(torch.tensor(...)).
  EXPECT_EQ(from_vector<float>({1.5f, -2.25f, 3.f}).to_string(), "tensor([ 1.5000, -2.2500,  3.0000])");
  EXPECT_EQ(from_vector<float>({1.f, 2.f}).to_string(), "tensor([1., 2.])");
  EXPECT_EQ(arange(3).to_string(), "tensor([0, 1, 2])");
  EXPECT_EQ(from_vector<double>({0.5}).to_string(), "tensor([0.5000], dtype=torch.float64)");
  EXPECT_EQ(from_vector<float>({1e-5f, 1.f}).to_string(), "tensor([1.0000e-05, 1.0000e+00])");
  EXPECT_EQ(scalar_tensor(3.5).to_string(), "tensor(3.5000)");
  EXPECT_EQ(zeros({0}).to_string(), "tensor([])");
  EXPECT_EQ(zeros({0, 3}).to_string(), "tensor([], size=(0, 3))");
  EXPECT_EQ(from_vector<bool>({true, false}).to_string(), "tensor([ True, False])");
  EXPECT_EQ(ones({2, 2}).to_string(), "tensor([[1., 1.],\n        [1., 1.]])");
  EXPECT_EQ(ones({2}, {.requires_grad = true}).to_string(), "tensor([1., 1.], requires_grad=True)");
  EXPECT_EQ((ones({2}, {.requires_grad = true}) * 2).to_string(), "tensor([2., 2.], grad_fn=<MulBackward0>)");
  EXPECT_EQ(arange(2000).to_string(), "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])");
  EXPECT_EQ(fmt::format("{}", arange(2)), "tensor([0, 1])");
  std::ostringstream os;
  os << Shape{2, 3};
  EXPECT_EQ(os.str(), "[2, 3]");
}

TEST(TensorBasics, ErrorsNameTheOp) {
  EXPECT_NE(error_of([] { Tensor().sizes(); }).find("[tensor] operation on an undefined tensor"), std::string::npos);
  EXPECT_NE(error_of([] { ones({2}).item<float>(); }).find("[item]"), std::string::npos);
  EXPECT_NE(error_of([] { ones({2}).sum(3); }).find("[sum] dimension out of range"), std::string::npos);
  EXPECT_NE(error_of([] { cat({ones({2, 3}), ones({2, 4})}, 0); }).find("[cat] sizes of tensors must match"),
            std::string::npos);
  EXPECT_NE(error_of([] { arange(3).data_ptr<float>(); }).find("[data_ptr]"), std::string::npos);
}

// Reductions over zero elements give the identity (sum 0) or NaN (mean, var), as in PyTorch;
// max/min have no identity and are errors.
TEST(TensorBasics, EmptyReductions) {
  EXPECT_EQ(zeros({0, 3}).sum().item<float>(), 0.0f);
  EXPECT_EQ(zeros({0}, {.dtype = kInt64}).sum().item<int64_t>(), 0);
  Tensor s = zeros({0, 3}).sum({0});
  EXPECT_EQ(s.sizes(), Shape({3}));
  EXPECT_TRUE(s.equal(zeros({3})));
  Tensor m = zeros({2, 0}).mean({1});
  EXPECT_EQ(m.sizes(), Shape({2}));
  EXPECT_TRUE(std::isnan(m[0].item<float>()) && std::isnan(m[1].item<float>()));
  EXPECT_TRUE(std::isnan(zeros({0}).var().item<float>()));
  EXPECT_NE(error_of([] { zeros({0, 2}).max(); }).find("[max]"), std::string::npos);
  EXPECT_EQ(zeros({3, 0}).sum({1}, true).sizes(), Shape({3, 1}));
}
