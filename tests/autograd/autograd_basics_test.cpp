// Autograd: gradcheck of every differentiable op, accumulation, retain_graph, autograd::grad,
// create_graph, hooks, retain_grad, no-grad mode, in-place checks.
#include <gtest/gtest.h>

#include "test_util.h"

#include <nnkit/nnkit.h>
#include <thread>

using namespace nnkit;
using autograd::gradcheck;

namespace {
Tensor R(const Shape& s, bool rg = true) { return randn(s, {.dtype = kFloat64, .requires_grad = rg}); }
using nnkit::test_util::error_of;
#define GRADCHECK(fn, ...)                          \
  do {                                              \
    auto r = gradcheck(fn, TensorList{__VA_ARGS__}); \
    EXPECT_TRUE(r.ok) << r.message;                 \
  } while (0)
}  // namespace

TEST(AutogradBasics, GradcheckElementwise) {
  manual_seed(10);
  GRADCHECK([](const TensorList& t) { return t[0] + t[1] * 2.0 - t[0] / (t[1].abs() + 1.0); }, R({3, 1, 4}), R({2, 1}));
  GRADCHECK([](const TensorList& t) { return add(t[0], t[1], 0.5) + sub(t[0], t[1], 3); }, R({3, 4}), R({4}));
  GRADCHECK([](const TensorList& t) { return t[0].exp() + t[0].sin() + t[0].cos() + t[0].tanh() + t[0].sigmoid(); }, R({5}));
  GRADCHECK([](const TensorList& t) { return (t[0].abs() + 0.5).log() + (t[0].abs() + 0.5).sqrt() + (t[0].abs() + 0.5).rsqrt(); }, R({6}));
  GRADCHECK([](const TensorList& t) { return t[0].gelu() + t[0].gelu("tanh") + t[0].erf() + t[0].relu() * 3.0; }, R({7}));
  GRADCHECK([](const TensorList& t) { return t[0].square() + (t[0].abs() + 1.0).reciprocal() - t[0].neg() + 2.0 / (t[0].abs() + 1.0); }, R({4}));
  GRADCHECK([](const TensorList& t) { return pow(t[0].abs() + 0.5, t[1]) + t[0].pow(3.0) + (t[0].abs() + 0.1).pow(0.5); }, R({3, 2}), R({2}));
  GRADCHECK([](const TensorList& t) { return maximum(t[0], t[1]) + minimum(t[0], t[1]); }, R({4, 3}), R({3}));
  GRADCHECK([](const TensorList& t) { return where(t[0] > 0.0, t[0], t[1]) + t[0].clamp(-0.5, 0.5); }, R({5}), R({5}));
}

TEST(AutogradBasics, GradcheckViewsReductionsLinalg) {
  manual_seed(11);
  GRADCHECK([](const TensorList& t) { return t[0].permute({2, 0, 1}).reshape({4, 6}).t().slice(0, 1, 5, 2).select(1, 2); }, R({2, 3, 4}));
  GRADCHECK([](const TensorList& t) { return t[0].unsqueeze(1).expand({3, 4, 5}).flatten(0, 1).narrow(0, 2, 5).squeeze(); }, R({3, 5}));
  GRADCHECK([](const TensorList& t) { return t[0][1] * t[0].transpose(0, 1).contiguous().view({-1}).sum(); }, R({3, 3}));
  GRADCHECK([](const TensorList& t) {
    return t[0].sum({0, 2}) + t[0].mean(1).sum(1) + t[0].var(2, 1).sum(0) + t[0].std({0, 1}, 0, true).view({-1}).narrow(0, 0, 3);
  }, R({3, 3, 4}));
  GRADCHECK([](const TensorList& t) { return t[0].amax(1) + std::get<0>(t[0].max(1)) + t[0].amin(1) + t[0].sum() + t[0].mean(); }, R({3, 4}));
  GRADCHECK([](const TensorList& t) { return t[0].matmul(t[1]) + t[0].mm(t[1]); }, R({3, 4}), R({4, 5}));
  GRADCHECK([](const TensorList& t) { return t[0].matmul(t[1]); }, R({2, 1, 3, 4}), R({5, 4, 2}));
  GRADCHECK([](const TensorList& t) { return t[0].matmul(t[1]) + t[1].matmul(t[0]); }, R({4}), R({4}));
  GRADCHECK([](const TensorList& t) { return t[0].bmm(t[1]); }, R({2, 3, 4}), R({2, 4, 2}));
  GRADCHECK([](const TensorList& t) { return cat({t[0], t[1] * 2.0}, 1) + stack({t[0], t[0]}, 0).sum(0).narrow(1, 0, 1); }, R({2, 3}), R({2, 2}));
  GRADCHECK([](const TensorList& t) { return t[0].softmax(1) * 3.0 + t[0].log_softmax(0); }, R({3, 5}));
}

TEST(AutogradBasics, GradcheckIndexingAndPadding) {
  manual_seed(13);
  Tensor idx = from_vector(std::vector<int64_t>{2, 0, 2, -1});
  Tensor gidx = randint(0, 3, {2, 4});
  GRADCHECK([idx](const TensorList& t) { return index_select(t[0], 1, idx); }, R({2, 3}));
  GRADCHECK([idx](const TensorList& t) { return index_add(t[0], 0, idx, t[1]); }, R({3, 2}), R({4, 2}));
  GRADCHECK([gidx](const TensorList& t) { return gather(t[0], 0, gidx); }, R({3, 4}));
  GRADCHECK([gidx](const TensorList& t) { return scatter_add(t[0], 0, gidx, t[1]); }, R({3, 4}), R({2, 4}));
  GRADCHECK([](const TensorList& t) { return flip(t[0], {0, -1}); }, R({2, 3}));
  for (const char* mode : {"constant", "reflect", "replicate", "circular"})
    GRADCHECK([mode](const TensorList& t) { return pad(t[0], {1, 2, 2, 0}, mode, 0.3); }, R({2, 3, 4}));
  GRADCHECK([](const TensorList& t) { return log1p(t[0].abs()) + expm1(t[0]); }, R({5}));
  // Second order: the gradient of index_select is index_add and back.
  Tensor x = randn({4, 3}, {.dtype = kFloat64, .requires_grad = true});
  Tensor y = index_select(x, 0, idx).pow(2.0).sum();
  Tensor g = autograd::grad({y}, {x}, {}, false, true)[0];
  Tensor gg = autograd::grad({g.sum()}, {x})[0];
  Tensor counts = index_add(zeros({4}, {.dtype = kFloat64}), 0, from_vector(std::vector<int64_t>{2, 0, 2, 3}),
                            ones({4}, {.dtype = kFloat64}));
  EXPECT_TRUE(allclose(gg, (counts * 2.0).unsqueeze(1).expand({4, 3})));
}

TEST(AutogradBasics, AccumulatesAndRetainsGraph) {
  Tensor x = ones({3}, {.requires_grad = true});
  Tensor y = (x * x).sum();
  y.backward({}, /*retain_graph=*/true);
  y.backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{4, 4, 4}));
  EXPECT_NE(error_of([&] { y.backward(); }).find("backward through the graph a second time"), std::string::npos);
  EXPECT_NE(error_of([] { ones({2}).sum().backward(); }).find("does not require grad"), std::string::npos);
  Tensor z = x * 2;
  EXPECT_NE(error_of([&] { z.backward(); }).find("only for one-element outputs"), std::string::npos);
}

TEST(AutogradBasics, GradFunctionAndHigherOrder) {
  Tensor x = from_vector<double>({0.5, -1.0, 2.0}, std::nullopt, {.requires_grad = true});
  Tensor y = x.pow(3.0).sum();
  Tensor g = autograd::grad({y}, {x}, {}, false, /*create_graph=*/true)[0];
  EXPECT_TRUE(allclose(g, x.detach().pow(2.0) * 3.0));
  Tensor g2 = autograd::grad({g.sum()}, {x})[0];
  EXPECT_TRUE(allclose(g2, x.detach() * 6.0));
  EXPECT_FALSE(x.grad().defined());  // autograd::grad does not touch .grad()
  Tensor t = x.tanh().sum();
  Tensor gt = autograd::grad({t}, {x}, {}, false, true)[0];
  Tensor gt2 = autograd::grad({gt.sum()}, {x})[0];
  Tensor th = x.detach().tanh();
  EXPECT_TRUE(allclose(gt2, (1.0 - th * th) * th * -2.0, 1e-10, 1e-12));
  Tensor unused = ones({1}, {.dtype = kFloat64, .requires_grad = true});
  EXPECT_NE(error_of([&] { autograd::grad({(x * 2).sum()}, {unused}); }).find("allow_unused"), std::string::npos);
  EXPECT_FALSE(autograd::grad({(x * 2).sum()}, {unused}, {}, false, false, true)[0].defined());
}

TEST(AutogradBasics, NoGradIsThreadLocal) {
  Tensor x = ones({2}, {.requires_grad = true});
  NoGradGuard g;
  EXPECT_FALSE((x * 2).requires_grad());
  bool other = false;
  std::thread th([&] { other = (x * 2).requires_grad(); });
  th.join();
  EXPECT_TRUE(other);
}

TEST(AutogradBasics, TensorHooks) {
  Tensor x = ones({2}, {.requires_grad = true});
  Tensor h = x * 3;
  int calls = 0;
  RemovableHandle handle = h.register_hook([&](const Tensor& g) {
    ++calls;
    return g * 10;
  });
  RemovableHandle leaf = x.register_hook([&](const Tensor& g) { EXPECT_EQ(g[0].item<float>(), 30.f); });
  h.sum().backward({}, true);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(x.grad()[0].item<float>(), 30.f);
  handle.remove();
  handle.remove();  // idempotent
  leaf.remove();
  x.mutable_grad() = Tensor();
  h.sum().backward();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(x.grad()[0].item<float>(), 3.f);
}

TEST(AutogradBasics, RetainGradAndLeafChecks) {
  Tensor x = ones({2}, {.requires_grad = true});
  Tensor h = x * 2;
  h.retain_grad();
  (h * h).sum().backward();
  EXPECT_EQ(h.grad().to_vector<float>(), (std::vector<float>{4, 4}));
  EXPECT_NE(error_of([&] { h.requires_grad_(false); }).find("leaf"), std::string::npos);
  EXPECT_NE(error_of([&] { x.add_(1.0); }).find("leaf tensor that requires grad"), std::string::npos);
  {
    NoGradGuard g;
    x.add_(1.0);  // allowed under no-grad
  }
  EXPECT_EQ(x[0].item<float>(), 2.f);
}

TEST(AutogradBasics, SavedTensorVersionCheck) {
  Tensor x = ones({3}, {.requires_grad = true});
  Tensor a = x * 2;
  Tensor b = a * a;  // saves a
  {
    NoGradGuard g;
    a.add_(1.0);
  }
  EXPECT_NE(error_of([&] { b.sum().backward(); }).find("modified by an in-place operation"), std::string::npos);
}

TEST(AutogradBasics, InPlaceInGraphGivesCorrectGradients) {
  manual_seed(12);
  GRADCHECK([](const TensorList& t) {
    Tensor y = t[0] * 2.0;
    y.mul_(t[1]);
    y.add_(t[0]);
    y.relu_();
    return y;
  }, R({4}), R({4}));
  Tensor x = ones({2}, {.requires_grad = true});
  Tensor v = (x * 2).view({2});
  EXPECT_NE(error_of([&] { v.add_(1.0); }).find("view"), std::string::npos);
}

TEST(AutogradBasics, DiamondAndPartialFlow) {
  Tensor x = from_vector<double>({1.0, 2.0}, std::nullopt, {.requires_grad = true});
  Tensor a = x * 3.0, b = x.exp();
  (a * b).sum().backward();
  Tensor ex = x.detach().exp();
  EXPECT_TRUE(allclose(x.grad(), ex * 3.0 + x.detach() * 3.0 * ex));
  Tensor w = from_vector<double>({1.0}, std::nullopt, {.requires_grad = true});
  Tensor c = x.detach() * w;  // no gradient flows to x here
  c.sum().backward();
  EXPECT_DOUBLE_EQ(w.grad().item<double>(), 3.0);
}

// backward(gradient): a gradient of another floating dtype is converted to the output's (as
// PyTorch's validate_outputs does); a non-floating one is an error.
TEST(AutogradBasics, RootGradientDtypeIsConverted) {
  Tensor x = randn({3}, {.requires_grad = true});
  Tensor y = x * 2.0;
  y.backward(ones({3}, {.dtype = kFloat64}));
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().dtype(), kFloat32);
  EXPECT_TRUE(x.grad().equal(full({3}, 2.0)));
  Tensor z = x * 3.0;
  EXPECT_NE(error_of([&] { z.backward(ones({3}, {.dtype = kInt64})); }).find("gradient must be floating point"),
            std::string::npos);
}

// A leaf's gradient accumulator lives as long as the leaf and does not own it: a graph that
// outlives a leaf still runs the leaf's hooks (as PyTorch's, which owns the leaf, does), and
// the other leaves still get their gradients.
TEST(AutogradBasics, AGraphMayOutliveItsLeaves) {
  Tensor keep = randn({3}, {.dtype = kFloat64, .requires_grad = true});
  Tensor y, w_values, hook_saw;
  {
    Tensor w = randn({3}, {.dtype = kFloat64, .requires_grad = true});
    w_values = w.detach().clone();
    RemovableHandle h = w.register_hook([&](const Tensor& g) { hook_saw = g.clone(); });
    y = (w * keep).sum();
    (void)h;
  }  // the only handle to w is gone; y's graph still points at w's accumulator
  y.backward();
  EXPECT_TRUE(keep.grad().allclose(w_values));
  ASSERT_TRUE(hook_saw.defined());
  EXPECT_TRUE(hook_saw.allclose(keep.detach()));
  // The same leaf used by several graphs accumulates through one node.
  Tensor a = keep * 2.0, b = keep * 3.0;
  ASSERT_EQ(a.grad_fn()->next_edges().size(), 1u);
  EXPECT_EQ(a.grad_fn()->next_edges()[0].fn, b.grad_fn()->next_edges()[0].fn);
}

// Backward passes on several threads into one shared leaf: accumulation is serialized.
TEST(AutogradBasics, ConcurrentBackwardIntoASharedLeaf) {
  Tensor x = randn({64}, {.dtype = kFloat64, .requires_grad = true});
  constexpr int kThreads = 4, kIters = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&x, t] {
      for (int i = 0; i < kIters; ++i) (x * double(t + 1)).sum().backward();
    });
  for (auto& th : threads) th.join();
  // sum over t of (t + 1) * kIters = (1 + 2 + 3 + 4) * 200
  EXPECT_TRUE(x.grad().equal(full({64}, 10.0 * kIters, {.dtype = kFloat64})));
}
