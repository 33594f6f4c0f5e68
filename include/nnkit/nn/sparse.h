#pragma once
// Sparse modules (torch/nn/modules/sparse.py): Embedding. Parameter name, shape, default
// initialization and repr follow PyTorch's.
#include <optional>
#include <string>

#include "nnkit/nn/functional.h"
#include "nnkit/nn/module.h"

namespace nnkit::nn {

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
  // Checks the module's input: int64 indices in [0, num_embeddings), not float inputs.
  Tensor forward(const Tensor& indices) override;
  void reset_parameters() override;
  std::string extra_repr() const override;
  const Options& options() const { return options_; }

  Tensor weight;  // [num_embeddings, embedding_dim], N(0, 1), padding row zero

 private:
  Options options_;
};

}  // namespace nnkit::nn
