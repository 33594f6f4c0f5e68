// The CUDA backend against the CPU: behaviour without a device, device names, moving data between devices, errors, memory, device queries and random streams.
// Helpers, fixtures and tolerances: cuda_util.h.
#include "cuda/cuda_util.h"

// ======================= without a device (runs on machines without a GPU) =======================

TEST_F(NoCuda, FactoriesOnCudaThrowACudaError) {
  const TensorOptions on_cuda{.device = Device::cuda()};
  int i = 0;
  for (auto& f : std::vector<std::function<void()>>{
           [&] { zeros({2}, on_cuda); }, [&] { ones({2, 3}, on_cuda); }, [&] { empty({4}, on_cuda); },
           [&] { full({2}, 1.5, on_cuda); }, [&] { randn({2}, on_cuda); }, [&] { rand({2}, on_cuda); },
           [&] { arange(5, on_cuda); }, [&] { eye(3, std::nullopt, on_cuda); },
           [&] { zeros({2}, {.dtype = kInt64, .device = Device::cuda(1)}); },
           [&] { scalar_tensor(1.0, on_cuda); }, [&] { zeros_like(ones({2}), on_cuda); },
           [&] { randn_like(ones({2}), on_cuda); },
           [&] {
             float v[2] = {1, 2};
             from_blob(v, {2}, kFloat32, std::nullopt, Device::cuda());
           }}) {
    std::string e = error_of(f);
    EXPECT_TRUE(e.starts_with("[cuda]")) << "factory " << i << ": " << e;
    ++i;
  }
}

TEST_F(NoCuda, MovingATensorToCudaThrowsAndChangesNothing) {
  Tensor t = randn({2, 3}, {.requires_grad = true});
  Tensor before = t.detach().clone();
  for (auto& f : std::vector<std::function<void()>>{
           [&] { t.to(Device::cuda(0)); }, [&] { t.to(Device::cuda()); }, [&] { t.cuda(); },
           [&] { t.to(Device::cuda(), kFloat64); }, [&] { t.detach().t().to(Device::cuda()); },
           [&] { ones({3}, {.dtype = kBool}).to(Device::cuda()); }}) {
    std::string e = error_of(f);
    EXPECT_TRUE(e.starts_with("[cuda]")) << e;
  }
  EXPECT_TRUE(t.is_cpu());
  EXPECT_TRUE(equal(t.detach(), before));
}

TEST_F(NoCuda, MovingAModuleToCudaThrowsAndLeavesItOnTheCpu) {
  auto m = nn::make<nn::Sequential>(nn::make<nn::Linear>(3, 4), nn::make<nn::BatchNorm1d>(4));
  StateDict before;
  for (auto& [n, t] : m->state_dict()) before.insert(n, t.clone());
  std::string e = error_of([&] { m->to(Device::cuda()); });
  EXPECT_TRUE(e.starts_with("[cuda]")) << e;
  e = error_of([&] { m->to(Device::cuda(), kFloat64); });
  EXPECT_TRUE(e.starts_with("[cuda]")) << e;
  for (auto& [n, t] : m->state_dict()) {
    EXPECT_TRUE(t.is_cpu()) << n;
    EXPECT_EQ(t.dtype(), before.at(n).dtype()) << n;
    EXPECT_TRUE(equal(t, before.at(n))) << n;
  }
  EXPECT_EQ(m(randn({2, 3})).sizes(), (std::vector<int64_t>{2, 4}));  // still works on the CPU
}

TEST_F(NoCuda, DeviceQueriesReportNoDevice) {
  EXPECT_FALSE(cuda::is_available());
  EXPECT_EQ(cuda::device_count(), 0);
  EXPECT_NO_THROW(cuda::synchronize());
  EXPECT_NO_THROW(cuda::empty_cache());
  EXPECT_NO_THROW(cuda::reset_peak_memory_stats());
  for (int d : {0, 1}) {
    cuda::MemoryStats s = cuda::memory_stats(d);
    EXPECT_EQ(s.allocated, 0);
    EXPECT_EQ(s.reserved, 0);
    EXPECT_EQ(s.peak_allocated, 0);
    EXPECT_EQ(s.num_allocs, 0);
    EXPECT_EQ(s.num_device_allocs, 0);
    EXPECT_EQ(cuda::memory_allocated(d), 0);
    EXPECT_EQ(cuda::memory_reserved(d), 0);
    EXPECT_EQ(cuda::max_memory_allocated(d), 0);
  }
}

// ======================= either way =======================

TEST(CudaApi, DeviceNames) {
  EXPECT_EQ(Device::cuda(1).str(), "cuda:1");
  EXPECT_EQ(Device::cuda().str(), "cuda:0");
  EXPECT_EQ(Device::cpu().str(), "cpu");
  std::ostringstream os;
  os << Device::cuda(3);
  EXPECT_EQ(os.str(), "cuda:3");
  EXPECT_TRUE(Device::cuda().is_cuda());
  EXPECT_FALSE(Device::cuda().is_cpu());
  EXPECT_EQ(Device::cuda(), Device::cuda(0));
  EXPECT_FALSE(Device::cuda(0) == Device::cuda(1));
  EXPECT_FALSE(Device::cuda(0) == Device::cpu());
}

TEST(CudaApi, Tf32IsOffByDefaultAndRoundTrips) {
  EXPECT_FALSE(cuda::allow_tf32());
  cuda::set_allow_tf32(true);
  EXPECT_TRUE(cuda::allow_tf32());
  cuda::set_allow_tf32(false);
  EXPECT_FALSE(cuda::allow_tf32());
}

// ======================= with a device =======================

// ---- moving data ----

TEST_F(Cuda, RoundTripsKeepValuesLayoutsAndDtypes) {
  Tensor x = randn({4, 6});
  std::vector<std::pair<std::string, Tensor>> cases = {
      {"contiguous", x},
      {"transposed", x.t()},
      {"strided slice", x.slice(1, 1, 6, 2)},
      {"expanded", randn({4, 1}).expand({4, 5})},
      {"0-dim", scalar_tensor(2.5)},
      {"empty", zeros({0, 3})},
      {"float64", randn({3, 5}, {.dtype = kFloat64})},
      {"int64", longs({0, -1, 1, (int64_t(1) << 40) + 7, -(int64_t(1) << 53) - 3, INT64_MAX, INT64_MIN})},
      {"bool", randn({3, 4}) > 0.0},
      {"permuted", randn({2, 3, 4}).permute({2, 0, 1})},
  };
  for (auto& [name, t] : cases) {
    SCOPED_TRACE(name);
    Tensor g = t.to(dev());
    ASSERT_TRUE(close(t, g, 0));
    if (!kDryRun) {
      EXPECT_TRUE(g.is_contiguous());
    }
    EXPECT_TRUE(equal(g.to(kCpu), t));
    EXPECT_EQ(g.to_vector<double>(), t.to_vector<double>());  // to_vector reads device memory too
    if (t.numel() == 1) {
      EXPECT_EQ(g.item<double>(), t.item<double>());
    }
    // Device-side layouts back to the CPU: transposed, strided, expanded views of device memory.
    if (t.dim() == 2) {
      EXPECT_TRUE(close(t.t().contiguous(), g.t().contiguous(), 0));
      EXPECT_TRUE(equal(g.t().to(kCpu), t.t()));
      EXPECT_TRUE(equal(g.slice(0, 0, std::nullopt, 2).to(kCpu), t.slice(0, 0, std::nullopt, 2)));
    }
  }
  // Conversions on the way, on the device, and back.
  for (Dtype from : {kFloat32, kFloat64, kInt64, kBool})
    for (Dtype to : {kFloat32, kFloat64, kInt64, kBool}) {
      SCOPED_TRACE(::testing::Message() << from << " -> " << to);
      Tensor t = (randn({3, 4}) * 5).to(from);
      EXPECT_TRUE(close(t.to(to), t.to(dev(), to), 0));
      EXPECT_TRUE(close(t.to(to), t.to(dev()).to(to), 0));
      EXPECT_TRUE(equal(t.to(dev()).to(kCpu, to), t.to(to)));
      EXPECT_TRUE(equal(t.t().to(dev(), to).to(kCpu), t.t().to(to)));
    }
  EXPECT_TRUE(x.to(dev()).to(dev()).device() == dev());
}

TEST_F(Cuda, CopiesOnAndBetweenDevices) {
  Tensor x = randn({4, 5}), y = randn({5, 4});
  Tensor gx = x.to(dev()), gy = y.to(dev());
  EXPECT_TRUE(close(x.clone(), gx.clone(), 0));
  EXPECT_FALSE(gx.clone().is_alias_of(gx));
  EXPECT_TRUE(close(y.t().contiguous(), gy.t().contiguous(), 0));
  // copy_ into a device tensor from the device (strided, broadcast, converting) and from the CPU.
  Tensor c = zeros({4, 5}), g = zeros({4, 5}, {.device = dev()});
  c.copy_(y.t());
  g.copy_(gy.t());
  EXPECT_TRUE(close(c, g, 0));
  c.copy_(randn({5}).mul(0).add(3.0));
  g.copy_(full({5}, 3.0, {.device = dev()}));
  EXPECT_TRUE(close(c, g, 0));
  c.copy_(y.t().to(kFloat64));
  g.copy_(gy.t().to(kFloat64));
  EXPECT_TRUE(close(c, g, 0));
  g.copy_(x);  // CPU -> device
  EXPECT_TRUE(close(x, g, 0));
  Tensor back = zeros({5, 4});
  back.copy_(gx.t());  // device -> CPU, strided
  EXPECT_TRUE(equal(back, x.t()));
  Tensor into_view = zeros({4, 10}, {.device = dev()});
  into_view.slice(1, 0, 10, 2).copy_(gx);  // into a strided view of device memory
  EXPECT_TRUE(equal(into_view.slice(1, 0, 10, 2).to(kCpu), x));
  EXPECT_EQ(into_view.slice(1, 1, 10, 2).abs().sum().item<double>(), 0.0);
  // Gradients flow across devices through to().
  Tensor leaf = randn({3}, {.requires_grad = true});
  (leaf.to(dev()) * 2.0).sum().backward();
  ASSERT_TRUE(leaf.grad().defined());
  EXPECT_TRUE(leaf.grad().is_cpu());
  EXPECT_TRUE(equal(leaf.grad(), full({3}, 2.0)));
  Tensor gleaf = randn({3}, {.device = dev(), .requires_grad = true});
  (gleaf.to(kCpu, kFloat64) * 3.0).sum().backward();
  ASSERT_TRUE(gleaf.grad().defined());
  EXPECT_EQ(gleaf.grad().device(), dev());
  EXPECT_EQ(gleaf.grad().dtype(), kFloat32);
  EXPECT_TRUE(equal(gleaf.grad().to(kCpu), full({3}, 3.0)));
  // A second device, when there is one.
  if (!kDryRun && cuda::device_count() >= 2) {
    Tensor g1 = gx.to(Device::cuda(1));
    EXPECT_EQ(g1.device(), Device::cuda(1));
    EXPECT_TRUE(equal(g1.to(kCpu), x));
    EXPECT_TRUE(equal(g1.to(Device::cuda(0)).to(kCpu), x));
    Tensor prod = g1.matmul(gy.to(Device::cuda(1)));
    EXPECT_EQ(prod.device(), Device::cuda(1));
    EXPECT_TRUE(close(x.matmul(y), prod.to(Device::cuda(0))));
    std::string e = error_of([&] { (void)(g1 + gx); });
    EXPECT_NE(e.find("cuda:0"), std::string::npos) << e;
    EXPECT_NE(e.find("cuda:1"), std::string::npos) << e;
  }
}

TEST_F(Cuda, FactoriesAndQueriesOnTheDevice) {
  const TensorOptions on{.device = dev()};
  EXPECT_TRUE(close(zeros({2, 3}), zeros({2, 3}, on), 0));
  EXPECT_TRUE(close(ones({2, 3}, {.dtype = kInt64}), ones({2, 3}, {.dtype = kInt64, .device = dev()}), 0));
  EXPECT_TRUE(close(full({4}, -2.5), full({4}, -2.5, on), 0));
  EXPECT_TRUE(close(arange(7), arange(7, on), 0));
  EXPECT_TRUE(close(arange(1.0, 3.0, 0.25), arange(1.0, 3.0, 0.25, on)));
  EXPECT_TRUE(close(linspace(-1, 1, 9), linspace(-1, 1, 9, on)));
  EXPECT_TRUE(close(eye(3, 4), eye(3, 4, on), 0));
  EXPECT_TRUE(close(scalar_tensor(1.5), scalar_tensor(1.5, on), 0));
  Tensor g = randn({3, 4}, on);
  EXPECT_EQ(empty_like(g).device(), dev());
  EXPECT_EQ(zeros_like(g).device(), dev());
  EXPECT_EQ(ones_like(g, {.dtype = kFloat64}).device(), dev());
  EXPECT_EQ(randn_like(g).device(), dev());
  // Random factories on the device: right range, reproducible with a seed.
  manual_seed(7);
  Tensor r1 = rand({1000}, on);
  manual_seed(7);
  Tensor r2 = rand({1000}, on);
  EXPECT_EQ(r1.device(), dev());
  EXPECT_TRUE(equal(r1, r2));
  EXPECT_GE(r1.min().item<double>(), 0.0);
  EXPECT_LT(r1.max().item<double>(), 1.0);
  Tensor ri = randint(3, 9, {1000}, on);
  EXPECT_EQ(ri.dtype(), kInt64);
  EXPECT_GE(ri.min().item<int64_t>(), 3);
  EXPECT_LE(ri.max().item<int64_t>(), 8);
  EXPECT_NEAR(randn({20000}, on).mean().item<double>(), 0.0, 0.05);
  // Whole-tensor comparisons and printing work on device tensors.
  EXPECT_TRUE(equal(g, g.clone()));
  EXPECT_TRUE(allclose(g, g + 1e-9));
  EXPECT_FALSE(g.to_string().empty());
  EXPECT_EQ(g.to_vector<float>().size(), 12u);
}

// ---- devices: errors, memory ----

TEST_F(Cuda, MixingCpuAndCudaTensorsIsAnErrorNamingBothDevices) {
  if (kDryRun) GTEST_SKIP() << "needs a real device";
  Tensor a = randn({3}), b = randn({3}).to(Device::cuda());
  const std::vector<std::pair<std::string, std::function<void()>>> cases = {
      {"add", [&] { (void)(a + b); }},
      {"mul", [&] { (void)(b * a); }},
      {"maximum", [&] { (void)maximum(b, a); }},
      {"comparison", [&] { (void)(a < b); }},
      {"where", [&] { (void)where(b > 0.0, a, b); }},
      {"matmul", [&] { (void)matmul(a.view({1, 3}), b.view({3, 1})); }},
      {"cat", [&] { (void)cat({a, b}); }},
      {"index_select", [&] { (void)index_select(b, 0, longs({0})); }},
      {"in-place add_", [&] { b.add_(a); }},
      {"linear", [&] { (void)F::linear(a.view({1, 3}), b.view({1, 3})); }},
      {"cross_entropy", [&] { (void)F::cross_entropy(b.view({1, 3}), longs({1})); }},
  };
  for (auto& [name, f] : cases) {
    std::string e = error_of(f);
    EXPECT_NE(e.find("cpu"), std::string::npos) << name << ": " << e;
    EXPECT_NE(e.find("cuda:0"), std::string::npos) << name << ": " << e;
  }
  auto lin = nn::make<nn::Linear>(3, 2);
  lin->to(Device::cuda());
  std::string e = error_of([&] { lin(a.view({1, 3})); });
  EXPECT_NE(e.find("cpu"), std::string::npos) << e;
  EXPECT_NE(e.find("cuda:0"), std::string::npos) << e;
}

TEST_F(Cuda, MemoryReturnsToItsStartAfterATrainingStep) {
  if (kDryRun) GTEST_SKIP() << "needs a real device";
  cuda::synchronize();
  const int64_t start = cuda::memory_allocated();
  cuda::reset_peak_memory_stats();
  auto train_step = [] {
    auto model = nn::make<nn::Sequential>(
        nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 3, .out_channels = 8, .kernel_size = 3, .padding = 1}),
        nn::make<nn::BatchNorm2d>(8), nn::make<nn::ReLU>(), nn::make<nn::AdaptiveAvgPool2d>(1), nn::make<nn::Flatten>(),
        nn::make<nn::Linear>(8, 10));
    model->to(Device::cuda());
    optim::Adam opt(model->parameters(), {.lr = 1e-3});
    Tensor x = randn({16, 3, 16, 16}).to(Device::cuda()), y = randint(0, 10, {16}).to(Device::cuda());
    Tensor loss = F::cross_entropy(model(x), y);
    loss.backward();
    opt.step();
    cuda::synchronize();
    EXPECT_GT(cuda::memory_allocated(), 0);
    cuda::MemoryStats s = cuda::memory_stats();
    EXPECT_EQ(s.allocated, cuda::memory_allocated());
    EXPECT_GE(s.reserved, s.allocated);
    EXPECT_GE(s.peak_allocated, s.allocated);
    EXPECT_GT(s.num_allocs, 0);
    EXPECT_LE(s.num_device_allocs, s.num_allocs);
  };
  train_step();
  cuda::synchronize();
  EXPECT_EQ(cuda::memory_allocated(), start);
  EXPECT_GT(cuda::max_memory_allocated(), start);
  EXPECT_GE(cuda::memory_reserved(), cuda::memory_allocated());
  // The same step again is served from the cache: no new cudaMalloc.
  const int64_t device_allocs = cuda::memory_stats().num_device_allocs;
  train_step();
  cuda::synchronize();
  EXPECT_EQ(cuda::memory_allocated(), start);
  EXPECT_EQ(cuda::memory_stats().num_device_allocs, device_allocs);
  // empty_cache hands the unused blocks back.
  const int64_t reserved = cuda::memory_reserved();
  cuda::empty_cache();
  EXPECT_LE(cuda::memory_reserved(), reserved);
  if (cuda::memory_allocated() == 0) {
    EXPECT_EQ(cuda::memory_reserved(), 0);
  }
  cuda::reset_peak_memory_stats();
  EXPECT_EQ(cuda::max_memory_allocated(), cuda::memory_allocated());
}

TEST_F(Cuda, DeviceQueries) {
  if (kDryRun) GTEST_SKIP() << "needs a real device";
  EXPECT_TRUE(cuda::is_available());
  EXPECT_GE(cuda::device_count(), 1);
  EXPECT_NO_THROW(cuda::synchronize());
  Tensor t = zeros({2}, {.device = Device::cuda()});
  EXPECT_EQ(t.device(), Device::cuda(0));
  EXPECT_TRUE(t.is_cuda());
  // A device index past the last one is an nnkit::Error, not a crash.
  EXPECT_NE(error_of([&] { zeros({2}, {.device = Device::cuda(cuda::device_count())}); }), "<no error>");
}

// rand/randn on the device draw from the same Philox counters as the CPU: a seed gives the same
// numbers on both (float64 Box-Muller on both sides; equal to the last bits or within 1e-12).
TEST_F(Cuda, RandomFillsMatchTheCpuStream) {
  for (Dtype dt : {kFloat32, kFloat64}) {
    manual_seed(7);
    Tensor uc = rand({1001}, {.dtype = dt}), nc = randn({3, 333}, {.dtype = dt});
    manual_seed(7);
    Tensor ug = rand({1001}, {.dtype = dt, .device = dev()}),
           ng = randn({3, 333}, {.dtype = dt, .device = dev()});
    EXPECT_TRUE(close(uc, ug, 0)) << dt;
    EXPECT_TRUE(close(nc, ng, dt == kFloat32 ? 1e-6 : 1e-12)) << dt;
  }
}
