// Parity with LibTorch: Embedding (src/nn/sparse.cpp, functional.cpp)
// Helpers and tolerances: parity_util.h.
#include "parity/parity_util.h"

using namespace parity;

namespace {
class ParitySparse : public DtypeTest {};
}  // namespace

TEST_P(ParitySparse, EmbeddingFunctional) {
  auto d = GetParam();
  check_op("embedding", {Idx({2, 5}, 7), R({7, 3}, d)}, [](auto& v) { return F::embedding(v[0], v[1]); },
           [](auto& v) { return torch::embedding(v[1], v[0]); });
  check_op("embedding padding_idx", {nk::from_vector(std::vector<int64_t>{1, 2, 1, 0}), R({4, 3}, d)},
           [](auto& v) { return F::embedding(v[0], v[1], 1); },
           [](auto& v) { return torch::embedding(v[1], v[0], 1); });
}

TEST(ParitySparseModules, EmbeddingPaddingIdx) {
  nk::manual_seed(9);
  {
    auto nm = nn::make<nn::Embedding>(nn::Embedding::Options{.num_embeddings = 10, .embedding_dim = 4, .padding_idx = 0});
    torch::nn::Embedding tm(torch::nn::EmbeddingOptions(10, 4).padding_idx(0));
    check_module("Embedding padding_idx", *nm, *tm, {nk::from_vector(std::vector<int64_t>{0, 3, 3, 9, 0, 1})},
                 [&](auto& v) { return nm(v[0]); }, [&](auto& v) { return tm(v[0]); });
    EXPECT_EQ(nm->repr(), "Embedding(10, 4, padding_idx=0)");
  }
}

NNKIT_PARITY_DTYPES(ParitySparse);
