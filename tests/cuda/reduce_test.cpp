// The CUDA backend against the CPU: reductions and softmax (cuda/reduce.cu).
// Helpers, fixtures and tolerances: cuda_util.h.
#include "cuda/cuda_util.h"

// ---- reductions and softmax ----

TEST_F(Cuda, Reductions) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = leaf({4, 5, 6}, dt);
    check_op("sum", OP(x[0].sum()), {x});
    check_op("mean", OP(x[0].mean()), {x});
    check_op("var", OP(x[0].var()), {x});
    check_op("std", OP(x[0].std(0.0)), {x});
    check_op("max", OP(x[0].max()), {x});
    check_op("min", OP(x[0].min()), {x});
    check_op("argmax", OP(x[0].argmax()), {x});
    check_op("argmin", OP(x[0].argmin()), {x});
    for (const Shape& dims : {Shape{0}, Shape{1}, Shape{-1}, Shape{0, 2}, Shape{2, 1}, Shape{0, 1, 2}})
      for (bool keep : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "dims " << dims << (keep ? " keepdim" : ""));
        check_op("sum dims", [dims, keep](const TensorList& v) { return v[0].sum(dims, keep); }, {x});
        check_op("mean dims", [dims, keep](const TensorList& v) { return mean(v[0], dims, keep); }, {x});
        check_op("var dims", [dims, keep](const TensorList& v) { return v[0].var(dims, 1, keep); }, {x});
        check_op("var dims c0", [dims, keep](const TensorList& v) { return var(v[0], dims, 0, keep); }, {x});
        check_op("std dims", [dims, keep](const TensorList& v) { return v[0].std(dims, 1, keep); }, {x});
        check_op("amax", [dims, keep](const TensorList& v) { return v[0].amax(dims, keep); }, {x});
        check_op("amin", [dims, keep](const TensorList& v) { return amin(v[0], dims, keep); }, {x});
        check_op("sum of transposed", [dims, keep](const TensorList& v) { return v[0].transpose(0, 2).sum(dims, keep); },
                 {x});
      }
    for (int64_t d : {0, 1, 2, -1})
      for (bool keep : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "dim " << d << (keep ? " keepdim" : ""));
        check_op("max dim values", [d, keep](const TensorList& v) { return std::get<0>(v[0].max(d, keep)); }, {x});
        check_op("max dim indices", [d, keep](const TensorList& v) { return std::get<1>(v[0].max(d, keep)); }, {x});
        check_op("min dim values", [d, keep](const TensorList& v) { return std::get<0>(v[0].min(d, keep)); }, {x});
        check_op("min dim indices", [d, keep](const TensorList& v) { return std::get<1>(v[0].min(d, keep)); }, {x});
        check_op("argmax dim", [d, keep](const TensorList& v) { return v[0].argmax(d, keep); }, {x});
        check_op("argmin dim", [d, keep](const TensorList& v) { return v[0].argmin(d, keep); }, {x});
      }
  }
  // Ties: indices are the first occurrence; amax/amin spread the gradient over the ties.
  Tensor ties = randint(0, 3, {5, 8}).to(kFloat32);
  ties.requires_grad_();
  check_op("max dim with ties", OP(std::get<0>(x[0].max(1))), {ties});
  check_op("max indices with ties", OP(std::get<1>(x[0].max(1))), {ties});
  check_op("argmin with ties", OP(x[0].argmin(0)), {ties});
  check_op("argmax all with ties", OP(x[0].argmax()), {ties});
  check_op("amax with ties", OP(x[0].amax({1})), {ties});
  check_op("amin with ties", OP(x[0].amin({0, 1})), {ties});
  check_op("max all with ties", OP(x[0].max()), {ties});
  // Large reductions (many blocks on the device) and long rows.
  check_op("sum of 2^20", OP(x[0].sum()), {leaf({1 << 20})});
  check_op("mean of long rows", OP(x[0].mean({1})), {leaf({3, 100000})});
  check_op("var of long rows", OP(x[0].var({1})), {leaf({3, 100000})});
  check_op("amax of long rows", OP(x[0].amax({1})), {leaf({3, 100000})});
  check_op("argmax of long rows", OP(x[0].argmax(1)), {randn({3, 100000})});
  check_op("sum over the outer dim of a tall tensor", OP(x[0].sum({0})), {leaf({50000, 3})});
  // Integers, bools, empty tensors.
  Tensor i = randint(-100, 100, {6, 7});
  check_op("int64 sum", OP(x[0].sum()), {i});
  check_op("int64 sum dim", OP(x[0].sum({1})), {i});
  check_op("int64 amax", OP(x[0].amax({0})), {i});
  check_op("int64 max dim", OP(std::get<0>(x[0].max(1))), {i});
  check_op("int64 argmin", OP(x[0].argmin(0)), {i});
  check_op("bool sum", OP(x[0].sum()), {i > 0.0});
  check_op("bool sum dim", OP(x[0].sum({0})), {i > 0.0});
  check_op("sum of one element", OP(x[0].sum({0})), {leaf({1, 4})});
  check_op("var of one element", OP(x[0].var({0})), {leaf({1, 4})});
}

// Separate from Reductions: on the CPU these currently die with SIGFPE (a division by zero in
// the reduction loop), which would take every other reduction check down with them.
TEST_F(Cuda, ReductionsOfEmptyTensors) {
  check_op("empty sum", OP(x[0].sum()), {zeros({0, 3})});
  check_op("empty sum dim 0", OP(x[0].sum({0})), {zeros({0, 3})});
  check_op("empty sum dim 1", OP(x[0].sum({1})), {leaf({0, 3})});
  check_op("empty mean dim", OP(x[0].mean({1})), {zeros({2, 0})});
  check_op("empty int64 sum", OP(x[0].sum()), {zeros({0}, {.dtype = kInt64})});
  check_op("amax over a non-empty dim", OP(x[0].amax({1})), {zeros({0, 3})});
}

TEST_F(Cuda, ReductionsWithNan) {
  Tensor x = randn({4, 6});
  x.select(0, 1).select(0, 2).fill_(NAN);
  x.select(0, 3).select(0, 0).fill_(NAN);
  x.select(0, 3).select(0, 4).fill_(NAN);
  x.requires_grad_();
  check_op("sum", OP(x[0].sum()), {x});
  check_op("sum dim", OP(x[0].sum({1})), {x});
  check_op("mean dim", OP(x[0].mean({0})), {x});
  check_op("var dim", OP(x[0].var({1})), {x});
  check_op("max", OP(x[0].max()), {x});
  check_op("min", OP(x[0].min()), {x});
  check_op("max dim", OP(std::get<0>(x[0].max(1))), {x});
  check_op("max dim indices", OP(std::get<1>(x[0].max(1))), {x});
  check_op("min dim indices", OP(std::get<1>(x[0].min(0))), {x});
  check_op("argmax", OP(x[0].argmax()), {x});
  check_op("argmin", OP(x[0].argmin()), {x});
  check_op("argmax dim", OP(x[0].argmax(1)), {x});
  check_op("amax", OP(x[0].amax({1})), {x});
  check_op("amin", OP(x[0].amin({0})), {x});
  check_op("softmax", OP(x[0].softmax(1)), {x});
  check_op("log_softmax", OP(x[0].log_softmax(0)), {x});
}

TEST_F(Cuda, SoftmaxAndLogSoftmax) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = leaf({4, 5, 6}, dt);
    for (int64_t d : {0, 1, 2, -1}) {
      SCOPED_TRACE(::testing::Message() << "dim " << d);
      check_op("softmax", [d](const TensorList& v) { return v[0].softmax(d); }, {x});
      check_op("log_softmax", [d](const TensorList& v) { return v[0].log_softmax(d); }, {x});
      check_op("softmax of transposed", [d](const TensorList& v) { return v[0].transpose(0, 2).softmax(d); }, {x});
      check_op("softmax of large values", [d](const TensorList& v) { return (v[0] * 1000.0).softmax(d); }, {x});
      check_op("log_softmax of large values", [d](const TensorList& v) { return (v[0] * 1000.0).log_softmax(d); },
               {x});
    }
    check_op("softmax 1-D", OP(x[0].softmax(0)), {leaf({7}, dt)});
    check_op("softmax 0-dim", OP(x[0].softmax(0)), {leaf({}, dt)});
    check_op("softmax of long rows", OP(x[0].softmax(1)), {leaf({3, 50000}, dt)});
    check_op("log_softmax of long rows", OP(x[0].log_softmax(1)), {leaf({3, 50000}, dt)});
  }
  // Masked entries (-inf), as attention uses them; an all-masked row gives NaN on both devices.
  Tensor m = leaf({3, 5});
  Tensor mask = zeros({3, 5});
  mask.select(0, 0).slice(0, 3).fill_(-INFINITY);
  mask.select(0, 2).fill_(-INFINITY);
  check_op("softmax with -inf", OP((x[0] + x[1]).softmax(1)), {m, mask});
  check_op("log_softmax with -inf", OP((x[0] + x[1]).log_softmax(1)), {m, mask});
}
