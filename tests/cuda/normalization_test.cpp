// The CUDA backend against the CPU: batch, group, layer and instance norm.
// Helpers, fixtures and tolerances: cuda_util.h.
#include "cuda/cuda_util.h"

TEST_F(Cuda, Normalization) {
  using BN = nn::BatchNorm::Options;
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    // Running statistics and num_batches_tracked after several training steps, then eval.
    for (auto& [name, o] : std::vector<std::pair<std::string, BN>>{
             {"default", BN{.num_features = 6}},
             {"cumulative average", BN{.num_features = 6, .momentum = std::nullopt}},
             {"momentum 0.3, no affine", BN{.num_features = 6, .momentum = 0.3, .affine = false}},
             {"no running stats", BN{.num_features = 6, .track_running_stats = false}}}) {
      auto bn2 = nn::make<nn::BatchNorm2d>(o);
      bn2->to(dt);
      check_train_eval("BatchNorm2d " + name, bn2, {leaf({4, 6, 5, 5}, dt)}, 3);
      auto bn1 = nn::make<nn::BatchNorm1d>(o);
      bn1->to(dt);
      check_train_eval("BatchNorm1d [N, C] " + name, bn1, {leaf({8, 6}, dt)}, 3);
      check_train_eval("BatchNorm1d [N, C, L] " + name, bn1, {leaf({4, 6, 7}, dt)}, 3);
    }
    auto bn = permuted({0, 3, 1, 2}, nn::make<nn::BatchNorm2d>(3));
    bn->to(dt);
    check_train_eval("BatchNorm2d of a permuted input", bn, {leaf({2, 4, 5, 3}, dt)}, 2);
    auto lnp = permuted({0, 2, 1}, nn::make<nn::LayerNorm>(Shape{6}));
    lnp->to(dt);
    check_train_eval("LayerNorm of a permuted input", lnp, {leaf({2, 6, 5}, dt)});
    auto gn = nn::make<nn::GroupNorm>(3, 6);
    gn->to(dt);
    check_train_eval("GroupNorm", gn, {leaf({2, 6, 4, 5}, dt)});
    check_train_eval("GroupNorm 3-D input", gn, {leaf({3, 6, 10}, dt)});
    auto gn1 = nn::make<nn::GroupNorm>(1, 4, 1e-3, false);
    gn1->to(dt);
    check_train_eval("GroupNorm one group, no affine", gn1, {leaf({2, 4, 3, 3}, dt)});
    auto ln = nn::make<nn::LayerNorm>(Shape{5});
    ln->to(dt);
    check_train_eval("LayerNorm", ln, {leaf({3, 4, 5}, dt)});
    auto ln2 = nn::make<nn::LayerNorm>(Shape{4, 5}, 1e-6, false);
    ln2->to(dt);
    check_train_eval("LayerNorm 2-D, no affine", ln2, {leaf({3, 4, 5}, dt)});
    check_train_eval("LayerNorm of long rows", nn::Ptr<>(nn::make<nn::LayerNorm>(Shape{4096})), {leaf({3, 4096})});
    auto in = nn::make<nn::InstanceNorm2d>(6);
    in->to(dt);
    check_train_eval("InstanceNorm2d", in, {leaf({2, 6, 4, 5}, dt)});
    auto ina = nn::make<nn::InstanceNorm2d>(6, 1e-5, true);
    ina->to(dt);
    check_train_eval("InstanceNorm2d affine", ina, {leaf({2, 6, 4, 5}, dt)});
  }
}

TEST_F(Cuda, BatchNormCountsBatchesAndTracksRunningStatsOverSteps) {
  auto cpu = nn::make<nn::BatchNorm2d>(4);
  auto gpu = cpu->clone().as<nn::BatchNorm2d>();
  gpu->to(dev());
  for (int step = 0; step < 5; ++step) {
    Tensor x = randn({3, 4, 6, 6}) * (step + 1.0) + step;
    Tensor yc = cpu(x), yg = gpu(x.to(dev()));
    ASSERT_TRUE(close(yc, yg));
  }
  EXPECT_EQ(gpu->num_batches_tracked.dtype(), kInt64);
  EXPECT_EQ(gpu->num_batches_tracked.device(), dev());
  EXPECT_EQ(gpu->num_batches_tracked.item<int64_t>(), 5);
  EXPECT_TRUE(close(cpu->running_mean, gpu->running_mean));
  EXPECT_TRUE(close(cpu->running_var, gpu->running_var));
  cpu->eval();
  gpu->eval();
  Tensor x = randn({2, 4, 6, 6});
  EXPECT_TRUE(close(cpu(x), gpu(x.to(dev()))));
  EXPECT_EQ(gpu->num_batches_tracked.item<int64_t>(), 5);  // not counted in eval
  // The functional form updates the buffers it is given, in place on the device.
  Tensor rm = zeros({4}, {.device = dev()}), rv = ones({4}, {.device = dev()});
  Tensor nbt = zeros({}, {.dtype = kInt64, .device = dev()});
  Tensor rmc = zeros({4}), rvc = ones({4}), nbtc = zeros({}, {.dtype = kInt64});
  Tensor xb = randn({5, 4, 3, 3});
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(close(F::batch_norm(xb, rmc, rvc, {}, {}, true, std::nullopt, 1e-5, nbtc),
                      F::batch_norm(xb.to(dev()), rm, rv, {}, {}, true, std::nullopt, 1e-5, nbt)));
  }
  EXPECT_TRUE(close(rmc, rm));
  EXPECT_TRUE(close(rvc, rv));
  EXPECT_TRUE(close(nbtc, nbt));
}
