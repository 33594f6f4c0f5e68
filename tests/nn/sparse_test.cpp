// Embedding (src/nn/sparse.cpp): shapes, errors, padding_idx.
#include <gtest/gtest.h>

#include "test_util.h"

#include <nnkit/nnkit.h>

using namespace nnkit;
namespace nn = nnkit::nn;
namespace F = nnkit::nn::functional;

using nnkit::test_util::error_of;

TEST(SparseModules, EmbeddingShapesErrorsAndPadding) {
  manual_seed(23);
  auto e = nn::make<nn::Embedding>(nn::Embedding::Options{.num_embeddings = 5, .embedding_dim = 3, .padding_idx = -1});
  EXPECT_EQ(e->repr(), "Embedding(5, 3, padding_idx=4)");
  EXPECT_EQ(e->weight[4].abs().sum().item<float>(), 0.f);  // the padding row starts at zero
  Tensor out = e(from_vector(std::vector<int64_t>{0, 4, 2, 2}).view({2, 2}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 2, 3}));
  out.sum().backward();
  EXPECT_EQ(e->weight.grad()[4].abs().sum().item<float>(), 0.f);
  EXPECT_EQ(e->weight.grad()[2][0].item<float>(), 2.f);
  EXPECT_NE(error_of([&] { e(from_vector(std::vector<int64_t>{5})); }).find("index out of range"), std::string::npos);
  EXPECT_NE(error_of([&] { e(ones({2})); }).find("expected int64 indices"), std::string::npos);
}
