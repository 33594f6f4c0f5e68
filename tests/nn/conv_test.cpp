// Convolution kernels beyond the parity suite (src/cpu/conv.cpp): the Winograd path.
#include <gtest/gtest.h>

#include "test_util.h"

#include <nnkit/nnkit.h>

using namespace nnkit;
namespace nn = nnkit::nn;
namespace F = nnkit::nn::functional;

using nnkit::test_util::error_of;

// 3x3 stride-1 convolutions with enough channels take the Winograd F(4x4,3x3) path (forward,
// input gradient, weight gradient). Checked against a reference built from other ops (shifted
// slices times the kernel taps, in float64): sizes that are and are not multiples of the 4x4
// tile, paddings 0-2, tile blocks that span images, few and many channels (the float32 error
// grows with the channels summed).
TEST(ConvKernels, WinogradConvolutionMatchesTapSums) {
  manual_seed(11);
  struct Case {
    int64_t N, C, K, H, W;
  };
  const std::vector<Case> cases{{2, 9, 12, 9, 10}, {2, 9, 12, 8, 7}, {3, 9, 12, 12, 12}, {2, 9, 12, 6, 5},
                                {3, 64, 40, 23, 17}, {1, 130, 72, 14, 14}};
  for (int64_t pad : {0, 1, 2})
    for (const Case& cs : cases)
      for (Dtype dt : {kFloat32, kFloat64}) {
        const int64_t N = cs.N, C = cs.C, K = cs.K, H = cs.H, W = cs.W;
        Tensor x = randn({N, C, H, W}, {.dtype = dt, .requires_grad = true});
        Tensor w = randn({K, C, 3, 3}, {.dtype = dt, .requires_grad = true});
        Tensor b = randn({K}, {.dtype = dt, .requires_grad = true});
        F::Conv2dFuncOptions o;
        o.padding = {pad, pad};
        Tensor y = F::conv2d(x, w, b, o);
        const int64_t Ho = H + 2 * pad - 2, Wo = W + 2 * pad - 2;
        ASSERT_EQ(y.sizes(), Shape({N, K, Ho, Wo}));
        // Reference in float64 from pad/narrow/matmul.
        Tensor xr = x.detach().to(kFloat64).requires_grad_(true), wr = w.detach().to(kFloat64).requires_grad_(true);
        Tensor xp = pad > 0 ? nnkit::pad(xr, {pad, pad, pad, pad}) : xr;
        Tensor ref = zeros({N, K, Ho * Wo}, {.dtype = kFloat64});
        for (int64_t i = 0; i < 3; ++i)
          for (int64_t j = 0; j < 3; ++j) {
            Tensor slice = xp.narrow(2, i, Ho).narrow(3, j, Wo).reshape({N, C, Ho * Wo});
            Tensor tap = wr.select(3, j).select(2, i);  // [K, C]
            ref = ref + matmul(tap, slice);
          }
        ref = ref.reshape({N, K, Ho, Wo}) + b.detach().to(kFloat64).view({1, K, 1, 1});
        const double tol = dt == kFloat32 ? 1e-5 : 1e-12;
        auto rel = [](const Tensor& a, const Tensor& r) {
          return (a.to(kFloat64) - r).abs().max().item<double>() / std::max(1e-30, r.abs().max().item<double>());
        };
        EXPECT_LT(rel(y, ref), tol) << "pad " << pad << " " << H << "x" << W << " C " << C << " " << dt;
        Tensor gy = randn(y.sizes(), {.dtype = dt});
        y.backward(gy);
        ref.backward(gy.to(kFloat64));
        EXPECT_LT(rel(x.grad(), xr.grad()), tol) << "input grad, pad " << pad << " " << H << "x" << W << " C " << C << " " << dt;
        EXPECT_LT(rel(w.grad(), wr.grad()), tol) << "weight grad, pad " << pad << " " << H << "x" << W << " C " << C << " " << dt;
        if (dt == kFloat32 && C == 64 && pad == 1)
          std::printf("winograd float32 rel. errors (C=64): out %.2e, input grad %.2e, weight grad %.2e\n",
                      rel(y, ref), rel(x.grad(), xr.grad()), rel(w.grad(), wr.grad()));
      }
}
