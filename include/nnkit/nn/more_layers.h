#pragma once
// More layers: activations with arguments, Conv1d, padding modes and "same" padding,
// InstanceNorm2d, Dropout2d, Unflatten, Embedding, Bilinear, and the loss modules (their functional
// forms are in functional.h). Parameter and buffer names, shapes, default initialization and repr follow PyTorch's.
#include <optional>
#include <string>

#include "nnkit/nn/functional.h"
#include "nnkit/nn/linear.h"
#include "nnkit/nn/module.h"

namespace nnkit::nn {

using functional::Padding;
using functional::Pair;

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : slope_(negative_slope) {}
  Tensor forward(const Tensor& x) override { return functional::leaky_relu(x, slope_); }
  std::string extra_repr() const override;

 private:
  double slope_;
};

class SiLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return functional::silu(x); }
};

class Softmax : public Module {
 public:
  explicit Softmax(int64_t dim) : dim_(dim) {}
  Tensor forward(const Tensor& x) override { return x.softmax(dim_); }
  std::string extra_repr() const override { return "dim=" + std::to_string(dim_); }

 private:
  int64_t dim_;
};

class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(int64_t dim) : dim_(dim) {}
  Tensor forward(const Tensor& x) override { return x.log_softmax(dim_); }
  std::string extra_repr() const override { return "dim=" + std::to_string(dim_); }

 private:
  int64_t dim_;
};

class Conv1d : public Module {
 public:
  struct Options {
    int64_t in_channels = 0;
    int64_t out_channels = 0;
    int64_t kernel_size = 1;
    int64_t stride = 1;
    Padding padding = 0;
    int64_t dilation = 1;
    int64_t groups = 1;
    bool bias = true;
    std::string padding_mode = "zeros";  // zeros, reflect, replicate, circular
  };
  explicit Conv1d(const Options& options);
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : Conv1d(Options{.in_channels = in_channels, .out_channels = out_channels, .kernel_size = kernel_size}) {}
  Tensor forward(const Tensor& x) override;
  void reset_parameters() override;
  std::string extra_repr() const override;
  const Options& options() const { return options_; }

  Tensor weight;  // [out_channels, in_channels / groups, kernel_size]
  Tensor bias;

 private:
  Options options_;
};

class ConvTranspose2d : public Module {
 public:
  struct Options {
    int64_t in_channels = 0;
    int64_t out_channels = 0;
    Pair kernel_size = 1;
    Pair stride = 1;
    Pair padding = 0;
    Pair output_padding = 0;
    int64_t groups = 1;
    bool bias = true;
    Pair dilation = 1;
  };
  explicit ConvTranspose2d(const Options& options);
  Tensor forward(const Tensor& x) override;
  void reset_parameters() override;
  std::string extra_repr() const override;
  const Options& options() const { return options_; }

  Tensor weight;  // [in_channels, out_channels / groups, kh, kw]
  Tensor bias;    // [out_channels]

 private:
  Options options_;
};

// Multi-head attention with PyTorch's parameters (in_proj_weight [3E, E], in_proj_bias [3E],
// out_proj.weight, out_proj.bias) and semantics. Call forward(query, key, value, ...), or the
// module with {query, key, value}: outputs {attn_output, attn_weights}.
class MultiheadAttention : public Module {
 public:
  struct Options {
    int64_t embed_dim = 0;
    int64_t num_heads = 1;
    double dropout = 0.0;
    bool bias = true;
    bool batch_first = false;  // inputs [N, L, E] instead of [L, N, E]
  };
  explicit MultiheadAttention(const Options& options);
  MultiheadAttention(int64_t embed_dim, int64_t num_heads)
      : MultiheadAttention(Options{.embed_dim = embed_dim, .num_heads = num_heads}) {}
  struct Result {
    Tensor output;   // [L, N, E] ([N, L, E] when batch_first)
    Tensor weights;  // [N, L, S] (averaged over heads) or [N, heads, L, S]; undefined unless need_weights
  };
  Result forward(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& key_padding_mask = {},
                 bool need_weights = true, const Tensor& attn_mask = {}, bool average_attn_weights = true);
  TensorList forward_list(const TensorList& inputs) override;
  using Module::forward;
  void reset_parameters() override;
  const Options& options() const { return options_; }

  Tensor in_proj_weight, in_proj_bias;
  Ptr<Linear> out_proj;

 private:
  Options options_;
};

class InstanceNorm2d : public Module {
 public:
  // PyTorch's defaults: affine=False, track_running_stats=False.
  explicit InstanceNorm2d(int64_t num_features, double eps = 1e-5, bool affine = false);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  Tensor weight, bias;  // [num_features] when affine

 private:
  int64_t num_features_;
  double eps_;
};

class Dropout2d : public Module {
 public:
  explicit Dropout2d(double p = 0.5);
  Tensor forward(const Tensor& x) override { return functional::dropout2d(x, p_, is_training()); }
  std::string extra_repr() const override;

 private:
  double p_;
};

class Unflatten : public Module {
 public:
  Unflatten(int64_t dim, Shape sizes) : dim_(dim), sizes_(std::move(sizes)) {}
  Tensor forward(const Tensor& x) override { return x.unflatten(dim_, sizes_); }
  std::string extra_repr() const override;

 private:
  int64_t dim_;
  Shape sizes_;
};

class Embedding : public Module {
 public:
  struct Options {
    int64_t num_embeddings = 0;
    int64_t embedding_dim = 0;
    std::optional<int64_t> padding_idx = std::nullopt;
  };
  explicit Embedding(const Options& options);
  Embedding(int64_t num_embeddings, int64_t embedding_dim)
      : Embedding(Options{.num_embeddings = num_embeddings, .embedding_dim = embedding_dim}) {}
  Tensor forward(const Tensor& indices) override;
  void reset_parameters() override;
  std::string extra_repr() const override;
  // Checks the module's input: int64 indices, not float inputs.
  const Options& options() const { return options_; }

  Tensor weight;  // [num_embeddings, embedding_dim], N(0, 1), padding row zero

 private:
  Options options_;
};

class Bilinear : public Module {
 public:
  Bilinear(int64_t in1_features, int64_t in2_features, int64_t out_features, bool bias = true);
  TensorList forward_list(const TensorList& inputs) override;
  Tensor forward(const Tensor& x1, const Tensor& x2) { return forward_list({x1, x2})[0]; }
  using Module::forward;
  void reset_parameters() override;
  std::string extra_repr() const override;

  Tensor weight;  // [out, in1, in2]
  Tensor bias;    // [out]

 private:
  int64_t in1_, in2_, out_;
};

// ---- loss modules: call with (input, target) ----
class Loss : public Module {
 public:
  explicit Loss(functional::Reduction reduction) : reduction_(reduction) {}
  Tensor operator()(const Tensor& input, const Tensor& target) { return Module::operator()(TensorList{input, target})[0]; }
  using Module::operator();

 protected:
  functional::Reduction reduction_;
};

class MSELoss : public Loss {
 public:
  explicit MSELoss(functional::Reduction r = functional::Reduction::Mean) : Loss(r) {}
  TensorList forward_list(const TensorList& in) override;
};
class L1Loss : public Loss {
 public:
  explicit L1Loss(functional::Reduction r = functional::Reduction::Mean) : Loss(r) {}
  TensorList forward_list(const TensorList& in) override;
};
class CrossEntropyLoss : public Loss {
 public:
  explicit CrossEntropyLoss(functional::CrossEntropyOptions options = {});
  TensorList forward_list(const TensorList& in) override;
  Tensor weight;  // buffer "weight" when given (PyTorch registers it as a buffer)

 private:
  functional::CrossEntropyOptions options_;
};
class NLLLoss : public Loss {
 public:
  explicit NLLLoss(functional::CrossEntropyOptions options = {});
  TensorList forward_list(const TensorList& in) override;
  Tensor weight;

 private:
  functional::CrossEntropyOptions options_;
};
class BCELoss : public Loss {
 public:
  explicit BCELoss(Tensor weight = {}, functional::Reduction r = functional::Reduction::Mean);
  TensorList forward_list(const TensorList& in) override;
  Tensor weight;
};
class BCEWithLogitsLoss : public Loss {
 public:
  explicit BCEWithLogitsLoss(Tensor weight = {}, Tensor pos_weight = {},
                             functional::Reduction r = functional::Reduction::Mean);
  TensorList forward_list(const TensorList& in) override;
  Tensor weight, pos_weight;
};

}  // namespace nnkit::nn
