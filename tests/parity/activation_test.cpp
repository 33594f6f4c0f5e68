// Parity with LibTorch: activation functions and the reprs of parameterless modules (src/nn/activation.cpp)
// Helpers and tolerances: parity_util.h.
#include "parity/parity_util.h"

using namespace parity;

namespace {
class ParityActivation : public DtypeTest {};
}  // namespace

TEST_P(ParityActivation, LeakyReluSilu) {
  auto d = GetParam();
  check_op("leaky_relu silu", {R({9}, d)}, [](auto& v) { return F::leaky_relu(v[0], 0.2) + F::silu(v[0]); },
           [](auto& v) { return torch::leaky_relu(v[0], 0.2) + torch::silu(v[0]); });
}

TEST(ParityActivationModules, ReprsAsPyTorchPrintsThem) {
  // Reprs of the parameterless modules, as PyTorch prints them.
  EXPECT_EQ(nn::make<nn::LeakyReLU>(0.2)->repr(), "LeakyReLU(negative_slope=0.2)");
  EXPECT_EQ(nn::make<nn::SiLU>()->repr(), "SiLU()");
  EXPECT_EQ(nn::make<nn::Softmax>(1)->repr(), "Softmax(dim=1)");
  EXPECT_EQ(nn::make<nn::LogSoftmax>(-1)->repr(), "LogSoftmax(dim=-1)");
  EXPECT_EQ(nn::make<nn::Dropout2d>(0.25)->repr(), "Dropout2d(p=0.25, inplace=False)");
  EXPECT_EQ(nn::make<nn::Unflatten>(1, nk::Shape{2, 3})->repr(), "Unflatten(dim=1, unflattened_size=(2, 3))");
}

NNKIT_PARITY_DTYPES(ParityActivation);
