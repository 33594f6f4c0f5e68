#pragma once
// nn::functional: the stateless forms of the layers (PyTorch's torch.nn.functional).
#include <optional>
#include <string>

#include "nnkit/core/tensor.h"
#include "nnkit/ops.h"

namespace nnkit::nn::functional {

// A pair of ints for 2-D options; a single int means both.
struct Pair {
  int64_t h, w;
  Pair(int64_t v) : h(v), w(v) {}  // NOLINT: implicit by design
  Pair(int64_t a, int64_t b) : h(a), w(b) {}
  friend bool operator==(const Pair&, const Pair&) = default;
};

// Padding for convolutions: explicit sizes, or "same" (output size = input size; stride 1) or
// "valid" (no padding), as in PyTorch.
struct Padding {
  enum class Kind { Explicit, Same, Valid };
  Pair value = 0;
  Kind kind = Kind::Explicit;
  Padding(int v) : value(v) {}                    // NOLINT: implicit by design (an exact match for
  Padding(int64_t v) : value(v) {}                // NOLINT  literals, so 0 is not a null const char*)
  Padding(Pair p) : value(p) {}                   // NOLINT
  Padding(int64_t h, int64_t w) : value(h, w) {}
  Padding(const char* s);                         // NOLINT: "same" or "valid"
};

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

struct Conv2dFuncOptions {
  Pair stride = 1;
  Pair padding = 0;
  Pair dilation = 1;
  int64_t groups = 1;
};
// x [N, C, H, W], weight [K, C/groups, kh, kw], bias [K] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, const Conv2dFuncOptions& options = {});

struct Pool2dOptions {
  Pair kernel_size;
  std::optional<Pair> stride = std::nullopt;  // defaults to kernel_size
  Pair padding = 0;
  bool ceil_mode = false;
};
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options);
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& options);
Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size);

// Normalization. In training, batch statistics are used and running stats (if defined) are
// updated in place with `momentum` (none: a cumulative average, with num_batches_tracked).
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, std::optional<double> momentum = 0.1, double eps = 1e-5,
                  const Tensor& num_batches_tracked = {});
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);

inline Tensor relu(const Tensor& x) { return x.relu(); }
inline Tensor gelu(const Tensor& x, std::string_view approximate = "none") { return x.gelu(approximate); }
inline Tensor sigmoid(const Tensor& x) { return x.sigmoid(); }
inline Tensor tanh(const Tensor& x) { return x.tanh(); }
Tensor silu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
inline Tensor softmax(const Tensor& x, int64_t dim) { return x.softmax(dim); }
inline Tensor log_softmax(const Tensor& x, int64_t dim) { return x.log_softmax(dim); }
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true);

enum class Reduction { None, Mean, Sum };
struct CrossEntropyOptions {
  Tensor weight = {};         // per-class weights [C], or undefined
  int64_t ignore_index = -100;
  Reduction reduction = Reduction::Mean;
  double label_smoothing = 0.0;
};
// For Module::clone(): a copy of the options with its own weight tensor.
inline CrossEntropyOptions clone_arg(const CrossEntropyOptions& o) {
  CrossEntropyOptions c = o;
  if (o.weight.defined()) c.weight = o.weight.detach().clone();
  return c;
}
// input [N, C] (or [N, C, d...]) logits; target int64 class indices [N] (or [N, d...]).
Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyOptions& options = {});
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const CrossEntropyOptions& options = {});
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

// Zeroes whole channels (dimension 1) with probability p, scaling the rest by 1/(1-p).
Tensor dropout2d(const Tensor& x, double p = 0.5, bool training = true);
// weight [num_embeddings, dim]; indices int64 of any shape -> [..., dim]. Rows at padding_idx
// receive no gradient.
Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<int64_t> padding_idx = std::nullopt);
// y[n, o] = x1[n, :] W[o] x2[n, :]^T + b[o];  x1 [N, I1], x2 [N, I2], W [O, I1, I2].
Tensor bilinear(const Tensor& x1, const Tensor& x2, const Tensor& weight, const Tensor& bias = {});
// x [N, C, L], weight [K, C/groups, k].
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, int64_t stride = 1, int64_t padding = 0,
              int64_t dilation = 1, int64_t groups = 1);
// The transpose (adjoint) of conv2d: x [N, Cin, H, W], weight [Cin, Cout/groups, kh, kw];
// output size (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1.
struct ConvTranspose2dFuncOptions {
  Pair stride = 1;
  Pair padding = 0;
  Pair output_padding = 0;
  int64_t groups = 1;
  Pair dilation = 1;
};
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {},
                        const ConvTranspose2dFuncOptions& options = {});
// Normalizes each (sample, channel) over its spatial positions.
Tensor instance_norm(const Tensor& x, const Tensor& weight = {}, const Tensor& bias = {}, double eps = 1e-5);
// Losses on probabilities (binary_cross_entropy; log terms clamped at -100 as in PyTorch) and on
// logits (numerically stable; pos_weight weighs the positive term per class).
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = {},
                            Reduction reduction = Reduction::Mean);
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight = {},
                                        const Tensor& pos_weight = {}, Reduction reduction = Reduction::Mean);

}  // namespace nnkit::nn::functional
