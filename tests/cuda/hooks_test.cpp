// The CUDA backend against the CPU: hooks, feature extraction and gradient inspection on a CUDA module.
// Helpers, fixtures and tolerances: cuda_util.h.
#include "cuda/cuda_util.h"

// ---- hooks, feature extraction ----

TEST_F(Cuda, HooksOnACudaModule) {
  struct Seen {
    Device pre = Device::cpu();
    Tensor out, grad_in, grad_out, tensor_grad;
  };
  auto cpu = nn::make<nn::Sequential>(nn::make<nn::Linear>(6, 8), nn::make<nn::Tanh>(), nn::make<nn::Linear>(8, 3));
  nn::Ptr<> gpu = cpu->clone();
  gpu->to(dev());
  Seen sc, sg;
  auto install = [](nn::Module& m, Seen& s) {
    std::vector<nn::ScopedHook> h;
    nn::Module& last = m.get_submodule("2");
    h.emplace_back(last.register_forward_pre_hook([&s](nn::Module&, TensorList& in) {
      s.pre = in[0].device();
      in[0] = in[0] * 2.0;  // replaces the input
    }));
    h.emplace_back(last.register_forward_hook([&s](nn::Module&, const TensorList&, TensorList& out) {
      s.out = out[0].detach();
      out[0] = out[0] + 1.0;  // replaces the output
    }));
    h.emplace_back(last.register_full_backward_hook([&s](nn::Module&, TensorList& gi, const TensorList& go) {
      s.grad_in = gi[0];
      s.grad_out = go[0];
      gi[0] = gi[0] * 0.5;  // replaces the gradient flowing on
    }));
    return h;
  };
  auto hc = install(*cpu, sc), hg = install(*gpu, sg);
  TensorList c = copy_inputs({leaf({4, 6})}, kCpu), g = copy_inputs(c, dev());
  Tensor yc = cpu(c[0]), yg = gpu(g[0]);
  auto th_c = yc.register_hook([&sc](const Tensor& grad) {
    sc.tensor_grad = grad;
    return grad * 3.0;
  });
  auto th_g = yg.register_hook([&sg](const Tensor& grad) {
    sg.tensor_grad = grad;
    return grad * 3.0;
  });
  ASSERT_TRUE(close(yc, yg));
  EXPECT_EQ(sg.pre, dev());
  EXPECT_TRUE(close(sc.out, sg.out));
  Tensor up = randn({4, 3});
  yc.backward(up);
  yg.backward(up.to(dev()));
  EXPECT_TRUE(close(sc.tensor_grad, sg.tensor_grad));
  EXPECT_TRUE(close(sc.grad_out, sg.grad_out));
  EXPECT_TRUE(close(sc.grad_in, sg.grad_in));
  EXPECT_TRUE(close(c[0].grad(), g[0].grad()));
  auto pg = gpu->named_parameters();
  for (auto& [n, p] : cpu->named_parameters()) EXPECT_TRUE(close(p.grad(), pg.at(n).grad())) << n;
}

TEST_F(Cuda, FeatureExtractorAndGradientInspectorOnACudaModule) {
  auto cpu = nn::make<nn::Sequential>(nn::make<nn::Linear>(10, 20), nn::make<nn::ReLU>(), nn::make<nn::Linear>(20, 20),
                                      nn::make<nn::ReLU>(), nn::make<nn::Linear>(20, 10));
  nn::Ptr<> gpu = cpu->clone();
  gpu->to(dev());
  Tensor x = randn({4, 10});
  for (nn::Capture policy : {nn::Capture::Detach, nn::Capture::DetachClone}) {
    nn::FeatureExtractor fc(*cpu, {"1", "3"}, policy), fg(*gpu, {"1", "3"}, policy);
    {
      auto a = fc.capture();
      auto b = fg.capture();
      NoGradGuard ng;
      cpu(x);
      gpu(x.to(dev()));
    }
    for (const char* name : {"1", "3"}) {
      const Tensor& f = fg.features().at(name);
      EXPECT_FALSE(f.requires_grad());
      EXPECT_TRUE(close(fc.features().at(name), f)) << name;
      EXPECT_TRUE(close(fc.snapshot().at(name), fg.snapshot().at(name))) << name;
    }
  }
  nn::GradientInspector ic(*cpu, {"0", "2", "4"}), ig(*gpu, {"0", "2", "4"});
  {
    auto a = ic.capture();
    auto b = ig.capture();
    cpu(x).pow(2.0).mean().backward();
    gpu(x.to(dev())).pow(2.0).mean().backward();
  }
  ASSERT_EQ(ic.stats().size(), ig.stats().size());
  for (auto& [name, s] : ic.stats()) {
    const nn::GradStats& t = ig.stats().at(name);
    EXPECT_NEAR(s.mean, t.mean, 1e-5 * s.mean) << name;
    EXPECT_NEAR(s.max, t.max, 1e-5 * s.max) << name;
    EXPECT_NEAR(s.std, t.std, 1e-4 * s.std + 1e-12) << name;
    EXPECT_EQ(s.vanishing, t.vanishing) << name;
  }
  EXPECT_EQ(ic.flagged(), ig.flagged());
}
