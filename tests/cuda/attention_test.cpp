// The CUDA backend against the CPU: Embedding and MultiheadAttention.
// Helpers, fixtures and tolerances: cuda_util.h.
#include "cuda/cuda_util.h"

TEST_F(Cuda, EmbeddingAndMultiheadAttention) {
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    auto emb = nn::make<nn::Embedding>(nn::Embedding::Options{.num_embeddings = 10, .embedding_dim = 4, .padding_idx = 2});
    emb->to(dt);
    Tensor idx = from_vector(std::vector<int64_t>{1, 2, 2, 9, 0, 1, 1, 1, 2, 5}, Shape{2, 5});
    check_train_eval("Embedding", emb, {idx});
    check_train_eval("Embedding, many repeats", emb, {randint(0, 3, {4000})});
    check_train_eval("Embedding, strided indices", emb, {idx.t()});

    auto mha = nn::make<nn::MultiheadAttention>(8, 2);
    mha->to(dt);
    Tensor q = leaf({3, 2, 8}, dt), k = leaf({4, 2, 8}, dt), v = leaf({4, 2, 8}, dt);
    check_train_eval("MultiheadAttention", mha, {q, k, v});
    check_train_eval("MultiheadAttention self", mha, {q, q, q});
    Tensor kpm = zeros({2, 4}, {.dtype = kBool});
    kpm.select(0, 1).select(0, 3).fill_(1.0);
    Tensor causal = arange(4).view({1, 4}) > arange(3).view({3, 1});
    check_train_eval("MultiheadAttention key_padding_mask", mha, {q, k, v, kpm});
    check_train_eval("MultiheadAttention bool attn_mask", mha, {q, k, v, kpm, causal});
    check_train_eval("MultiheadAttention float attn_mask", mha, {q, k, v, Tensor(), randn({3, 4}, {.dtype = dt})});
    auto bf = nn::make<nn::MultiheadAttention>(
        nn::MultiheadAttention::Options{.embed_dim = 12, .num_heads = 3, .bias = false, .batch_first = true});
    bf->to(dt);
    check_train_eval("MultiheadAttention batch_first, no bias", bf, {leaf({2, 5, 12}, dt), leaf({2, 6, 12}, dt), leaf({2, 6, 12}, dt)});
  }
}
