#pragma once
// Attention modules: MultiheadAttention (torch.nn.MultiheadAttention; PyTorch keeps it in
// torch/nn/modules/activation.py).
#include "nnkit/nn/linear.h"
#include "nnkit/nn/module.h"

namespace nnkit::nn {

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

}  // namespace nnkit::nn
