// The CUDA backend against the CPU: matrix products and the TF32 switch (cuda/blas_dnn.cpp).
// Helpers, fixtures and tolerances: cuda_util.h.
#include "cuda/cuda_util.h"

TEST_F(Cuda, MatrixProducts) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    const std::vector<std::pair<Shape, Shape>> shapes = {
        {{5}, {5}},          {{5}, {5, 3}},          {{4, 5}, {5}},           {{4, 5}, {5, 3}},
        {{2, 4, 5}, {5, 3}}, {{4, 5}, {2, 5, 3}},    {{2, 1, 4, 5}, {3, 5, 6}}, {{3, 4, 5}, {5}},
        {{1, 1}, {1, 1}},    {{64, 128}, {128, 96}}, {{7, 0}, {0, 3}}};
    for (auto& [sa, sb] : shapes) {
      SCOPED_TRACE(::testing::Message() << sa << " @ " << sb);
      check_op("matmul", OP(matmul(x[0], x[1])), {leaf(sa, dt), leaf(sb, dt)});
    }
    Tensor a = leaf({5, 4}, dt), b = leaf({3, 5}, dt), c = leaf({4, 5}, dt), d = leaf({5, 3}, dt);
    check_op("mm", OP(x[0].mm(x[1])), {c, d});
    check_op("mm a^T", OP(x[0].t().mm(x[1])), {a, d});
    check_op("mm b^T", OP(x[0].mm(x[1].t())), {c, b});
    check_op("mm a^T b^T", OP(x[0].t().mm(x[1].t())), {a, b});
    check_op("mm strided", OP(x[0].slice(1, 0, 10, 2).mm(x[1].slice(0, 0, 10, 2))), {leaf({4, 10}, dt), leaf({10, 3}, dt)});
    check_op("matmul a^T", OP(matmul(x[0].t(), x[1])), {a, d});
    check_op("matmul expanded", OP(matmul(x[0].expand({3, 4, 5}), x[1])), {c, leaf({3, 5, 2}, dt)});
    Tensor p = leaf({3, 4, 5}, dt), q = leaf({3, 5, 6}, dt), qt = leaf({3, 6, 5}, dt), pt = leaf({3, 5, 4}, dt);
    check_op("bmm", OP(x[0].bmm(x[1])), {p, q});
    check_op("bmm b^T", OP(x[0].bmm(x[1].transpose(1, 2))), {p, qt});
    check_op("bmm a^T", OP(x[0].transpose(1, 2).bmm(x[1])), {pt, q});
    check_op("bmm permuted", OP(x[0].permute({1, 0, 2}).bmm(x[1])), {leaf({4, 3, 5}, dt), q});
    check_op("batched matmul b^T", OP(matmul(x[0], x[1].transpose(-1, -2))), {leaf({2, 3, 4, 5}, dt), leaf({3, 6, 5}, dt)});
  }
  // Larger float32 products: only right with TF32 off (the default).
  ASSERT_FALSE(cuda::allow_tf32());
  check_op("mm 256", OP(x[0].mm(x[1])), {leaf({256, 256}), leaf({256, 256})});
  check_op("bmm 8x128", OP(x[0].bmm(x[1])), {leaf({8, 128, 128}), leaf({8, 128, 128})});
}

TEST_F(Cuda, Tf32IsOffByDefaultAndOnlyLoosensFloat32Products) {
  EXPECT_FALSE(cuda::allow_tf32());
  Tensor a = randn({512, 512}), b = randn({512, 512});
  Tensor ref = a.mm(b);
  Tensor w = randn({16, 8, 3, 3}), img = randn({4, 8, 32, 32});
  Tensor conv_ref = F::conv2d(img, w, {}, {.padding = 1});
  EXPECT_TRUE(close(ref, a.to(dev()).mm(b.to(dev()))));
  EXPECT_TRUE(close(conv_ref, F::conv2d(img.to(dev()), w.to(dev()), {}, {.padding = 1})));
  cuda::set_allow_tf32(true);
  Tensor fast = a.to(dev()).mm(b.to(dev()));
  Tensor fast_conv = F::conv2d(img.to(dev()), w.to(dev()), {}, {.padding = 1});
  Tensor f64 = a.to(dev(), kFloat64).mm(b.to(dev(), kFloat64));  // float64 never uses TF32
  cuda::set_allow_tf32(false);
  EXPECT_TRUE(close(ref, fast, 5e-3));  // TF32 keeps 10 mantissa bits
  EXPECT_TRUE(close(conv_ref, fast_conv, 5e-3));
  EXPECT_TRUE(close(a.to(kFloat64).mm(b.to(kFloat64)), f64));
  EXPECT_TRUE(close(ref, a.to(dev()).mm(b.to(dev()))));  // and off again
}
