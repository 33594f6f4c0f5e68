// Attention modules (include/nnkit/nn/attention.h).
#include "nnkit/nn/attention.h"

#include <cmath>

#include "nnkit/nn/functional.h"
#include "nnkit/nn/init.h"

namespace nnkit::nn {

// ---- MultiheadAttention (torch.nn.functional.multi_head_attention_forward, PyTorch 1.13) ----
MultiheadAttention::MultiheadAttention(const Options& o) : options_(o) {
  NNKIT_CHECK(o.embed_dim > 0 && o.num_heads > 0 && o.embed_dim % o.num_heads == 0,
              "[MultiheadAttention] embed_dim (", o.embed_dim, ") must be divisible by num_heads (", o.num_heads, ")");
  NNKIT_CHECK(o.dropout >= 0 && o.dropout < 1, "[MultiheadAttention] dropout must be in [0, 1), got ", o.dropout);
  in_proj_weight = register_parameter("in_proj_weight", empty({3 * o.embed_dim, o.embed_dim}));
  in_proj_bias = register_parameter("in_proj_bias", o.bias ? empty({3 * o.embed_dim}) : Tensor());
  out_proj = register_module<Linear>("out_proj", o.embed_dim, o.embed_dim, o.bias);
  reset_parameters();
}
void MultiheadAttention::reset_parameters() {
  init::xavier_uniform_(in_proj_weight);
  if (in_proj_bias.defined()) init::zeros_(in_proj_bias);
  out_proj->reset_parameters();
  if (out_proj->bias.defined()) init::zeros_(out_proj->bias);
}
MultiheadAttention::Result MultiheadAttention::forward(const Tensor& query_in, const Tensor& key_in,
                                                       const Tensor& value_in, const Tensor& key_padding_mask,
                                                       bool need_weights, const Tensor& attn_mask,
                                                       bool average_attn_weights) {
  const int64_t E = options_.embed_dim, H = options_.num_heads, hd = E / H;
  for (const Tensor* t : {&query_in, &key_in, &value_in})
    if (!t->defined() || t->dim() != 3 || t->size(2) != E)
      fail(nnkit::detail::concat("expected query, key and value of shape [", options_.batch_first ? "N, L" : "L, N", ", ",
                                 E, "], got ", t->defined() ? t->sizes() : Shape{}));
  Tensor query = options_.batch_first ? query_in.transpose(0, 1) : query_in;
  Tensor key = options_.batch_first ? key_in.transpose(0, 1) : key_in;
  Tensor value = options_.batch_first ? value_in.transpose(0, 1) : value_in;
  const int64_t L = query.size(0), N = query.size(1), S = key.size(0);
  if (key.size(1) != N || value.size(1) != N || value.size(0) != S)
    fail(nnkit::detail::concat("query ", query_in.sizes(), ", key ", key_in.sizes(), " and value ", value_in.sizes(),
                               " do not agree on batch size and source length"));
  auto proj = [&](const Tensor& x, int64_t i) {
    Tensor w = in_proj_weight.narrow(0, i * E, E);
    Tensor b = in_proj_bias.defined() ? in_proj_bias.narrow(0, i * E, E) : Tensor();
    return functional::linear(x, w, b);
  };
  // [len, N, E] -> [N * H, len, hd]
  auto heads = [&](const Tensor& x, int64_t len) { return x.reshape({len, N * H, hd}).transpose(0, 1); };
  Tensor q = heads(proj(query, 0), L), k = heads(proj(key, 1), S), v = heads(proj(value, 2), S);
  Tensor scores = (q * (1.0 / std::sqrt(double(hd)))).bmm(k.transpose(1, 2));  // [N*H, L, S]
  if (attn_mask.defined()) {
    Tensor m = attn_mask.dim() == 2 ? attn_mask.unsqueeze(0) : attn_mask;
    if (!((m.dim() == 3) && (m.size(0) == 1 || m.size(0) == N * H) && m.size(1) == L && m.size(2) == S))
      fail(nnkit::detail::concat("attn_mask must be [", L, ", ", S, "] or [", N * H, ", ", L, ", ", S, "], got ",
                                 attn_mask.sizes()));
    scores = m.dtype() == kBool ? where(m, -INFINITY, scores) : scores + m.to(scores.dtype());
  }
  if (key_padding_mask.defined()) {
    if (key_padding_mask.dim() != 2 || key_padding_mask.size(0) != N || key_padding_mask.size(1) != S)
      fail(nnkit::detail::concat("key_padding_mask must be [", N, ", ", S, "], got ", key_padding_mask.sizes()));
    Tensor m = key_padding_mask.view({N, 1, 1, S});
    Tensor s4 = scores.view({N, H, L, S});
    s4 = m.dtype() == kBool ? where(m, -INFINITY, s4) : s4 + m.to(scores.dtype());
    scores = s4.view({N * H, L, S});
  }
  Tensor attn = scores.softmax(-1);
  if (options_.dropout > 0) attn = functional::dropout(attn, options_.dropout, is_training());
  Tensor out = attn.bmm(v).transpose(0, 1).reshape({L * N, E});  // [L, N*H, hd] -> [L*N, E]
  out = out_proj->forward(out).view({L, N, E});
  Result r;
  r.output = options_.batch_first ? out.transpose(0, 1) : out;
  if (need_weights) {
    Tensor w = attn.view({N, H, L, S});
    r.weights = average_attn_weights ? w.mean(1) : w;
  }
  return r;
}
TensorList MultiheadAttention::forward_list(const TensorList& in) {
  if (in.size() < 3 || in.size() > 5)
    fail("expects {query, key, value[, key_padding_mask[, attn_mask]]}, got " + std::to_string(in.size()) + " tensors");
  Result r = forward(in[0], in[1], in[2], in.size() > 3 ? in[3] : Tensor(), true, in.size() > 4 ? in[4] : Tensor());
  return {r.output, r.weights};
}

}  // namespace nnkit::nn
