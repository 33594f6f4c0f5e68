// Parity with LibTorch: Linear and Bilinear (src/nn/linear.cpp, functional.cpp)
// Helpers and tolerances: parity_util.h.
#include "parity/parity_util.h"

using namespace parity;

namespace {
class ParityLinear : public DtypeTest {};
}  // namespace

TEST_P(ParityLinear, BilinearFunctional) {
  auto d = GetParam();
  check_op("bilinear", {R({4, 3}, d), R({4, 5}, d), R({2, 3, 5}, d), R({2}, d)},
           [](auto& v) { return F::bilinear(v[0], v[1], v[2], v[3]); },
           [](auto& v) { return torch::bilinear(v[0], v[1], v[2], v[3]); });
}

TEST(ParityLinearModules, Bilinear) {
  nk::manual_seed(9);
  {
    auto nm = nn::make<nn::Bilinear>(3, 4, 5);
    torch::nn::Bilinear tm(3, 4, 5);
    check_module("Bilinear", *nm, *tm, {nk::randn({6, 3}), nk::randn({6, 4})},
                 [&](auto& v) { return nm->forward(v[0], v[1]); }, [&](auto& v) { return tm(v[0], v[1]); });
    EXPECT_EQ(nm->repr(), "Bilinear(in1_features=3, in2_features=4, out_features=5, bias=True)");
  }
}

NNKIT_PARITY_DTYPES(ParityLinear);
