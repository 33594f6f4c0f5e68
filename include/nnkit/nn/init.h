#pragma once
// nn::init: PyTorch's initializers with identical fan computation and gains. All run under
// no-grad and modify the tensor in place (its handle stays the same); each returns it.
#include <optional>

#include "nnkit/core/tensor.h"

namespace nnkit::nn::init {

enum class Nonlinearity { Linear, Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, Sigmoid, Tanh, ReLU, LeakyReLU, SELU };
enum class FanMode { FanIn, FanOut };

// The recommended gain for a nonlinearity; `param` is leaky_relu's negative slope (default 0.01).
double calculate_gain(Nonlinearity nonlinearity, std::optional<double> param = std::nullopt);

struct Fans {
  int64_t fan_in;
  int64_t fan_out;
};
// fan_in = size(1) * receptive field, fan_out = size(0) * receptive field; needs >= 2 dims.
Fans calculate_fan_in_and_fan_out(const Tensor& t);

struct KaimingOptions {
  double a = 0;  // negative slope of the rectifier after this layer (leaky_relu)
  FanMode mode = FanMode::FanIn;
  Nonlinearity nonlinearity = Nonlinearity::LeakyReLU;
};

Tensor uniform_(Tensor t, double a = 0, double b = 1);
Tensor normal_(Tensor t, double mean = 0, double std = 1);
// Normal(mean, std) truncated to [a, b].
Tensor trunc_normal_(Tensor t, double mean = 0, double std = 1, double a = -2, double b = 2);
Tensor constant_(Tensor t, double value);
Tensor ones_(Tensor t);
Tensor zeros_(Tensor t);
Tensor eye_(Tensor t);
Tensor dirac_(Tensor t, int64_t groups = 1);
Tensor xavier_uniform_(Tensor t, double gain = 1);
Tensor xavier_normal_(Tensor t, double gain = 1);
Tensor kaiming_uniform_(Tensor t, const KaimingOptions& options = {});
Tensor kaiming_normal_(Tensor t, const KaimingOptions& options = {});
Tensor orthogonal_(Tensor t, double gain = 1);
Tensor sparse_(Tensor t, double sparsity, double std = 0.01);

}  // namespace nnkit::nn::init
