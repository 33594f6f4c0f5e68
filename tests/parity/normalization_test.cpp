// Parity with LibTorch: batch, group, layer and instance norm (src/ops/normalization.cpp, src/nn/normalization.cpp)
// Helpers and tolerances: parity_util.h.
#include "parity/parity_util.h"

using namespace parity;

namespace {
class ParityNorm : public DtypeTest {};
}  // namespace

TEST_P(ParityNorm, GroupLayerInstanceNorm) {
  auto d = GetParam();
  check_op("group_norm", {R({2, 6, 4, 3}, d), R({6}, d), R({6}, d)},
           [](auto& v) { return F::group_norm(v[0], 3, v[1], v[2]); },
           [](auto& v) { return torch::group_norm(v[0], 3, v[1], v[2]); });
  check_op("layer_norm", {R({4, 5, 6}, d), R({5, 6}, d), R({5, 6}, d)},
           [](auto& v) { return F::layer_norm(v[0], {5, 6}, v[1], v[2]); },
           [](auto& v) { return torch::layer_norm(v[0], {5, 6}, v[1], v[2]); });
  check_op("instance_norm", {R({2, 3, 4, 5}, d), R({3}, d), R({3}, d)},
           [](auto& v) { return F::instance_norm(v[0], v[1], v[2]); },
           [](auto& v) { return torch::instance_norm(v[0], v[1], v[2], {}, {}, true, 0.1, 1e-5, false); });
}

TEST(ParityNormModules, BatchNormRunningStatsAndModes) {
  nk::manual_seed(3);
  auto nb = nn::make<nn::BatchNorm2d>(4);
  torch::nn::BatchNorm2d tb(4);
  copy_state(*nb, *tb);
  for (int step = 0; step < 4; ++step) {
    nk::Tensor x = nk::randn({3, 4, 5, 5});
    nk::Tensor xn = x.clone().requires_grad_(true);
    torch::Tensor xt = to_torch(x).requires_grad_(true);
    nk::Tensor yn = nb(xn);
    torch::Tensor yt = tb(xt);
    EXPECT_LE(rel_err(yn, yt), 1e-5);
    nk::Tensor up = nk::randn(yn.sizes());
    yn.backward(up);
    yt.backward(to_torch(up));
    EXPECT_LE(rel_err(xn.grad(), xt.grad()), 1e-5);
    EXPECT_LE(rel_err(nb->weight.grad(), tb->weight.grad()), 1e-5);
  }
  EXPECT_LE(rel_err(nb->running_mean, tb->running_mean), 1e-5);
  EXPECT_LE(rel_err(nb->running_var, tb->running_var), 1e-5);
  EXPECT_EQ(nb->num_batches_tracked.item<int64_t>(), tb->num_batches_tracked.item<int64_t>());
  nb->eval();
  tb->eval();
  nk::Tensor x = nk::randn({2, 4, 3, 3});
  EXPECT_LE(rel_err(nb(x), tb(to_torch(x))), 1e-5);
}

TEST(ParityNormModules, InstanceNorm2dAffine) {
  nk::manual_seed(9);
  {
    auto nm = nn::make<nn::InstanceNorm2d>(3, 1e-5, true);
    torch::nn::InstanceNorm2d tm(torch::nn::InstanceNorm2dOptions(3).affine(true));
    check_module("InstanceNorm2d affine", *nm, *tm, {nk::randn({2, 3, 4, 4})}, [&](auto& v) { return nm(v[0]); },
                 [&](auto& v) { return tm(v[0]); });
    EXPECT_EQ(nm->repr(), "InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=False)");
  }
}

NNKIT_PARITY_DTYPES(ParityNorm);
