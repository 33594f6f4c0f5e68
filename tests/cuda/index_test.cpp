// The CUDA backend against the CPU: joins, indexing and padding (src/ops/join.cpp, index.cpp; cuda/nn_kernels.cu).
// Helpers, fixtures and tolerances: cuda_util.h.
#include "cuda/cuda_util.h"

TEST_F(Cuda, CatAndStack) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor a = leaf({2, 3, 4}, dt), b = leaf({2, 5, 4}, dt), c = leaf({2, 1, 4}, dt);
    check_op("cat dim 1", OP(cat({x[0], x[1], x[2]}, 1)), {a, b, c});
    check_op("cat dim 0", OP(cat({x[0], x[1]}, 0)), {a, leaf({3, 3, 4}, dt)});
    check_op("cat dim -1", OP(cat({x[0], x[1]}, -1)), {a, leaf({2, 3, 2}, dt)});
    check_op("cat strided", OP(cat({x[0].transpose(0, 2), x[1].transpose(0, 2)}, 1)), {a, b});
    check_op("cat with an empty", OP(cat({x[0], x[1]}, 1)), {a, zeros({2, 0, 4}, {.dtype = dt})});
    check_op("cat one", OP(cat({x[0]}, 0)), {a});
    check_op("cat same twice", OP(cat({x[0], x[0]}, 2)), {a});
    for (int64_t d : {0, 1, 3, -1})
      check_op("stack", [d](const TensorList& v) { return stack({v[0], v[1], v[2]}, d); },
               {a, leaf({2, 3, 4}, dt), leaf({2, 3, 4}, dt)});
  }
  check_op("cat int64", OP(cat({x[0], x[1]}, 0)), {randint(0, 9, {2, 3}), randint(0, 9, {1, 3})});
  check_op("stack bool", OP(stack({x[0], x[1]}, 1)), {randn({4}) > 0.0, randn({4}) > 0.0});
  check_op("cat mixed dtypes", OP(cat({x[0], x[1]}, 0)), {leaf({2, 3}), leaf({1, 3}, kFloat64)});
}

TEST_F(Cuda, IndexingOps) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = leaf({5, 6, 4}, dt);
    Tensor idx = longs({4, 0, 2, 2, -1, 1});
    check_op("index_select 0", OP(index_select(x[0], 0, x[1])), {x, idx});
    check_op("index_select 1", OP(index_select(x[0], 1, x[1])), {x, longs({5, 5, 0})});
    check_op("index_select -1", OP(index_select(x[0], -1, x[1])), {x, longs({3, 0})});
    check_op("index_select strided", OP(index_select(x[0].transpose(0, 2), 2, x[1])), {x, idx});
    check_op("index_select empty", OP(index_select(x[0], 0, x[1])), {x, zeros({0}, {.dtype = kInt64})});
    // Repeated indices accumulate (atomics on the device).
    check_op("index_add 0", OP(index_add(x[0], 0, x[1], x[2])), {x, idx, leaf({6, 6, 4}, dt)});
    check_op("index_add 1", OP(index_add(x[0], 1, x[1], x[2])), {x, longs({1, 1, 1, 5}), leaf({5, 4, 4}, dt)});
    check_op("index_add many repeats", OP(index_add(x[0], 0, x[1], x[2])),
             {leaf({3, 8}, dt), randint(0, 3, {4000}), leaf({4000, 8}, dt)});
    Tensor g1 = randint(0, 6, {5, 3, 4}), g0 = randint(0, 5, {2, 6, 4});
    check_op("gather 1", OP(gather(x[0], 1, x[1])), {x, g1});
    check_op("gather 0", OP(gather(x[0], 0, x[1])), {x, g0});
    check_op("gather -1", OP(gather(x[0], -1, x[1])), {x, randint(0, 4, {5, 6, 7})});
    check_op("gather strided", OP(gather(x[0].transpose(0, 1), 0, x[1])), {x, randint(0, 6, {3, 5, 4})});
    check_op("scatter_add 1", OP(scatter_add(x[0], 1, x[1], x[2])), {x, g1, leaf({5, 3, 4}, dt)});
    check_op("scatter_add 0", OP(scatter_add(x[0], 0, x[1], x[2])), {x, g0, leaf({2, 6, 4}, dt)});
    check_op("scatter_add many repeats", OP(scatter_add(x[0], 1, x[1], x[2])),
             {leaf({4, 3}, dt), randint(0, 3, {4, 5000}), leaf({4, 5000}, dt)});
    for (const Shape& dims : {Shape{0}, Shape{1}, Shape{-1}, Shape{0, 2}, Shape{0, 1, 2}})
      check_op("flip", [dims](const TensorList& v) { return flip(v[0], dims); }, {x});
    check_op("flip strided", OP(flip(x[0].transpose(0, 1), {0})), {x});
  }
  check_op("index_select int64", OP(index_select(x[0], 0, x[1])), {randint(0, 9, {4, 3}), longs({3, 0})});
  check_op("gather bool", OP(gather(x[0], 1, x[1])), {randn({3, 4}) > 0.0, randint(0, 4, {3, 2})});
  check_op("flip int64", OP(flip(x[0], {1})), {randint(0, 9, {4, 3})});
}

TEST_F(Cuda, Pad) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x4 = leaf({2, 3, 5, 6}, dt), x3 = leaf({2, 3, 7}, dt);
    for (const char* mode : {"constant", "reflect", "replicate", "circular"}) {
      SCOPED_TRACE(mode);
      std::string m = mode;
      check_op("pad 2-D", [m](const TensorList& v) { return pad(v[0], {1, 2, 2, 1}, m); }, {x4});
      check_op("pad 1-D", [m](const TensorList& v) { return pad(v[0], {3, 1}, m); }, {x3});
      check_op("pad strided", [m](const TensorList& v) { return pad(v[0].transpose(2, 3), {0, 2, 1, 0}, m); }, {x4});
    }
    check_op("pad value", OP(pad(x[0], {1, 1, 1, 1}, "constant", -2.5)), {x4});
    check_op("pad crop", OP(pad(x[0], {-1, 2, 0, -2})), {x4});
    check_op("pad outer dims", OP(pad(x[0], {0, 0, 1, 1, 2, 0})), {x4});
  }
  check_op("pad int64", OP(pad(x[0], {1, 1})), {randint(0, 9, {3, 4})});
}
