// The CUDA backend against the CPU: Linear and Bilinear.
// Helpers, fixtures and tolerances: cuda_util.h.
#include "cuda/cuda_util.h"

TEST_F(Cuda, LinearAndBilinear) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    auto lin = nn::make<nn::Linear>(7, 5);
    lin->to(dt);
    check_train_eval("Linear", lin, {leaf({4, 7}, dt)});
    check_train_eval("Linear 3-D input", lin, {leaf({2, 3, 7}, dt)});
    check_train_eval("Linear 1-D input", lin, {leaf({7}, dt)});
    auto nobias = nn::make<nn::Linear>(nn::Linear::Options{.in_features = 7, .out_features = 3, .bias = false});
    nobias->to(dt);
    check_train_eval("Linear without bias", nobias, {leaf({4, 7}, dt)});
    auto bil = nn::make<nn::Bilinear>(5, 4, 3);
    bil->to(dt);
    check_train_eval("Bilinear", bil, {leaf({6, 5}, dt), leaf({6, 4}, dt)});
    auto bil_nb = nn::make<nn::Bilinear>(3, 3, 2, false);
    bil_nb->to(dt);
    Tensor same = leaf({4, 3}, dt);
    check_train_eval("Bilinear without bias, one input twice", bil_nb, {same, same});
  }
}
