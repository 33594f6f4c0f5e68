// Parity with LibTorch: the ResNet block (nnkit::models::BasicBlock against its LibTorch twin in
// torch_twins.h), forward and backward in training mode, then eval, with and without downsample.
#include "parity/parity_util.h"

using namespace parity;

TEST(ParityModels, BasicBlockForwardBackward) {
  struct Config {
    int64_t inplanes, planes, stride, size;
  };
  for (Config c : {Config{8, 16, 2, 12}, Config{16, 16, 1, 9}}) {
    nk::manual_seed(5);
    auto nb = nn::make<nk::models::BasicBlock>(c.inplanes, c.planes, c.stride);
    TorchBasicBlock tb(c.inplanes, c.planes, c.stride);
    std::string name = "BasicBlock(" + std::to_string(c.inplanes) + ", " + std::to_string(c.planes) + ", stride " +
                       std::to_string(c.stride) + ")";
    check_module(name, *nb, *tb, {nk::randn({4, c.inplanes, c.size, c.size})}, [&](auto& v) { return nb(v[0]); },
                 [&](auto& v) { return tb(v[0]); });
    // The running statistics the training pass updated, then the eval-mode output.
    EXPECT_LE(rel_err(nb->bn1->as<nn::BatchNorm2d>()->running_var, tb->bn1->running_var), 1e-5) << name;
    nb->eval();
    tb->eval();
    nk::Tensor x = nk::randn({2, c.inplanes, c.size, c.size});
    double e = rel_err(nb(x), tb(to_torch(x)));
    record(name + " eval", e);
    EXPECT_LE(e, 1e-5) << name;
  }
}
