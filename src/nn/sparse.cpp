// Sparse modules (include/nnkit/nn/sparse.h); semantics from torch/nn/modules/sparse.py.
#include "nnkit/nn/sparse.h"

#include "nnkit/autograd/grad_mode.h"
#include "nnkit/nn/init.h"

namespace nnkit::nn {

Embedding::Embedding(const Options& o) : options_(o) {
  NNKIT_CHECK(o.num_embeddings > 0 && o.embedding_dim > 0, "[Embedding] num_embeddings and embedding_dim must be positive");
  if (o.padding_idx) {
    NNKIT_CHECK(*o.padding_idx >= -o.num_embeddings && *o.padding_idx < o.num_embeddings,
                "[Embedding] padding_idx must be within num_embeddings");
    if (*options_.padding_idx < 0) *options_.padding_idx += o.num_embeddings;
  }
  weight = register_parameter("weight", empty({o.num_embeddings, o.embedding_dim}));
  reset_parameters();
}
void Embedding::reset_parameters() {
  init::normal_(weight);
  if (options_.padding_idx) {
    NoGradGuard g;
    weight.select(0, *options_.padding_idx).fill_(0.0);
  }
}
Tensor Embedding::forward(const Tensor& indices) {
  if (indices.dtype() != kInt64) fail(nnkit::detail::concat("expected int64 indices, got ", indices.dtype()));
  {
    NoGradGuard g;
    if (indices.numel() > 0 && (indices.min().item<int64_t>() < 0 || indices.max().item<int64_t>() >= options_.num_embeddings))
      fail(nnkit::detail::concat("index out of range: indices must be in [0, ", options_.num_embeddings, ")"));
  }
  return functional::embedding(indices, weight, options_.padding_idx);
}
std::string Embedding::extra_repr() const {
  std::string s = std::to_string(options_.num_embeddings) + ", " + std::to_string(options_.embedding_dim);
  if (options_.padding_idx) s += ", padding_idx=" + std::to_string(*options_.padding_idx);
  return s;
}

}  // namespace nnkit::nn
