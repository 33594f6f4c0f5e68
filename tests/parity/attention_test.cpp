// Parity with LibTorch: MultiheadAttention (src/nn/attention.cpp)
// Helpers and tolerances: parity_util.h.
#include "parity/parity_util.h"

using namespace parity;

TEST(ParityAttention, MultiheadAttention) {
  nk::manual_seed(31);
  // MultiheadAttention: self-attention with a causal float mask, and cross-attention with a
  // key padding mask; outputs, averaged weights and all gradients.
  auto nm = nn::make<nn::MultiheadAttention>(8, 2);
  torch::nn::MultiheadAttention tm(torch::nn::MultiheadAttentionOptions(8, 2));
  const int64_t L = 4, S = 5, N = 3;
  nk::Tensor causal = nk::where(nk::arange(L).unsqueeze(1) < nk::arange(L).unsqueeze(0), -1e9, nk::zeros({L, L}));
  torch::Tensor tcausal = to_torch(causal);
  check_module("MultiheadAttention self causal", *nm, *tm, {nk::randn({L, N, 8})},
               [&](auto& v) { return nm->forward(v[0], v[0], v[0], {}, true, causal).output; },
               [&](auto& v) { return std::get<0>(tm->forward(v[0], v[0], v[0], torch::Tensor(), true, tcausal)); });
  nk::Tensor kpm = nk::from_vector(std::vector<bool>{false, false, true, false, true, false, false, false, false,
                                                     false, false, false, false, true, true}).view({N, S});
  torch::Tensor tkpm = to_torch(kpm);
  check_module("MultiheadAttention cross kpm", *nm, *tm, {nk::randn({L, N, 8}), nk::randn({S, N, 8}), nk::randn({S, N, 8})},
               [&](auto& v) { return nm->forward(v[0], v[1], v[2], kpm).output; },
               [&](auto& v) { return std::get<0>(tm(v[0], v[1], v[2], tkpm)); });
  nk::Tensor q = nk::randn({L, N, 8}), kv = nk::randn({S, N, 8});
  nk::Tensor w = nm->forward(q, kv, kv, kpm).weights;
  torch::Tensor tw = std::get<1>(tm(to_torch(q), to_torch(kv), to_torch(kv), tkpm));
  EXPECT_LE(rel_err(w, tw), 1e-5);
  // batch_first gives the same result on transposed inputs.
  auto bf = nn::make<nn::MultiheadAttention>(nn::MultiheadAttention::Options{.embed_dim = 8, .num_heads = 2, .batch_first = true});
  bf->load_state_dict(nm->state_dict());
  EXPECT_LE(rel_err(bf->forward(q.transpose(0, 1), kv.transpose(0, 1), kv.transpose(0, 1), kpm).output.transpose(0, 1),
                    std::get<0>(tm(to_torch(q), to_torch(kv), to_torch(kv), tkpm))),
            1e-5);
}
