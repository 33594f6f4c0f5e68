// More layers (see include/nnkit/nn/more_layers.h); their functional forms are in functional.cpp. Semantics from
// PyTorch's torch/nn/modules/{activation,conv,instancenorm,dropout,flatten,sparse,linear,loss}.py.
#include "nnkit/nn/more_layers.h"

#include <cmath>

#include "nn/internal.h"
#include "nnkit/autograd/grad_mode.h"
#include "ops/common.h"
#include "nnkit/nn/init.h"
#include "nnkit/nn/layers.h"

namespace nnkit::nn {

namespace {
std::string tuple1(int64_t v) { return "(" + std::to_string(v) + ",)"; }
using internal::pair_str;
}  // namespace

// Zero/reflect/replicate/circular padding and "same"/"valid" for a 4-D convolution; used by
// Conv2d and (through a height-1 view) Conv1d.
Tensor padded_conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, const Padding& padding,
                     Pair dilation, int64_t groups, const std::string& mode) {
  int64_t top = padding.value.h, bottom = padding.value.h, left = padding.value.w, right = padding.value.w;
  if (padding.kind == Padding::Kind::Valid) top = bottom = left = right = 0;
  if (padding.kind == Padding::Kind::Same) {
    NNKIT_CHECK(stride == Pair(1), "[Conv] padding='same' is not supported for strided convolutions");
    const int64_t th = dilation.h * (weight.size(2) - 1), tw = dilation.w * (weight.size(3) - 1);
    top = th / 2, bottom = th - top, left = tw / 2, right = tw - left;
  }
  if (mode == "zeros" && top == bottom && left == right)
    return functional::conv2d(x, weight, bias,
                              {.stride = stride, .padding = Pair(top, left), .dilation = dilation, .groups = groups});
  Tensor xp = pad(x, {left, right, top, bottom}, mode == "zeros" ? "constant" : mode);
  return functional::conv2d(xp, weight, bias, {.stride = stride, .padding = 0, .dilation = dilation, .groups = groups});
}

// ---- activations ----
std::string LeakyReLU::extra_repr() const { return "negative_slope=" + py_float(slope_); }

// ---- Conv1d ----
Conv1d::Conv1d(const Options& o) : options_(o) {
  internal::check_conv_options("Conv1d", o.in_channels, o.out_channels, o.groups, o.padding_mode);
  NNKIT_CHECK(o.kernel_size > 0, "[Conv1d] kernel_size must be positive");
  weight = register_parameter("weight", empty({o.out_channels, o.in_channels / o.groups, o.kernel_size}));
  bias = register_parameter("bias", o.bias ? empty({o.out_channels}) : Tensor());
  reset_parameters();
}
void Conv1d::reset_parameters() { internal::reset_default_parameters(weight, bias); }
Tensor Conv1d::forward(const Tensor& x) {
  if (x.dim() != 3 || x.size(1) != options_.in_channels)
    fail(nnkit::detail::concat("expected input [N, ", options_.in_channels, ", L], got shape ", x.sizes()));
  const Options& o = options_;
  Padding p = o.padding;
  p.value = Pair(0, o.padding.value.w);
  return padded_conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, Pair(1, o.stride), p, Pair(1, o.dilation), o.groups,
                       o.padding_mode)
      .squeeze(2);
}
std::string Conv1d::extra_repr() const {
  const Options& o = options_;
  std::string s = std::to_string(o.in_channels) + ", " + std::to_string(o.out_channels) +
                  ", kernel_size=" + tuple1(o.kernel_size) + ", stride=" + tuple1(o.stride);
  if (o.padding.kind == Padding::Kind::Same) s += ", padding=same";
  else if (o.padding.kind == Padding::Kind::Valid) s += ", padding=valid";
  else if (o.padding.value.w != 0) s += ", padding=" + tuple1(o.padding.value.w);
  if (o.dilation != 1) s += ", dilation=" + tuple1(o.dilation);
  if (o.groups != 1) s += ", groups=" + std::to_string(o.groups);
  if (!bias.defined()) s += ", bias=False";
  if (o.padding_mode != "zeros") s += ", padding_mode=" + o.padding_mode;
  return s;
}

// ---- InstanceNorm2d ----
InstanceNorm2d::InstanceNorm2d(int64_t num_features, double eps, bool affine) : num_features_(num_features), eps_(eps) {
  NNKIT_CHECK(num_features > 0, "[InstanceNorm2d] num_features must be positive, got ", num_features);
  if (affine) {
    weight = register_parameter("weight", ones({num_features}));
    bias = register_parameter("bias", zeros({num_features}));
  }
}
Tensor InstanceNorm2d::forward(const Tensor& x) {
  if ((x.dim() != 4 && x.dim() != 3) || x.size(-3) != num_features_)
    fail(nnkit::detail::concat("expected input [N, ", num_features_, ", H, W] or [", num_features_, ", H, W], got shape ",
                               x.sizes()));
  if (x.dim() == 3) return functional::instance_norm(x.unsqueeze(0), weight, bias, eps_).squeeze(0);
  return functional::instance_norm(x, weight, bias, eps_);
}
std::string InstanceNorm2d::extra_repr() const {
  return std::to_string(num_features_) + ", eps=" + py_float(eps_) + ", momentum=0.1, affine=" +
         (weight.defined() ? "True" : "False") + ", track_running_stats=False";
}

// ---- Dropout2d, Unflatten ----
Dropout2d::Dropout2d(double p) : p_(p) {
  NNKIT_CHECK(p >= 0 && p <= 1, "[Dropout2d] dropout probability has to be between 0 and 1, but got ", p);
}
std::string Dropout2d::extra_repr() const { return "p=" + py_float(p_) + ", inplace=False"; }

std::string Unflatten::extra_repr() const {
  std::string s = "dim=" + std::to_string(dim_) + ", unflattened_size=(";
  for (size_t i = 0; i < sizes_.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes_[i]);
  return s + (sizes_.size() == 1 ? ",)" : ")");
}

// ---- Embedding ----
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

// ---- Bilinear ----
Bilinear::Bilinear(int64_t in1, int64_t in2, int64_t out, bool with_bias) : in1_(in1), in2_(in2), out_(out) {
  NNKIT_CHECK(in1 > 0 && in2 > 0 && out > 0, "[Bilinear] feature sizes must be positive");
  weight = register_parameter("weight", empty({out, in1, in2}));
  bias = register_parameter("bias", with_bias ? empty({out}) : Tensor());
  reset_parameters();
}
void Bilinear::reset_parameters() {
  const double bound = 1.0 / std::sqrt(double(in1_));
  init::uniform_(weight, -bound, bound);
  if (bias.defined()) init::uniform_(bias, -bound, bound);
}
TensorList Bilinear::forward_list(const TensorList& in) {
  if (in.size() != 2) fail("expects two inputs (x1, x2), got " + std::to_string(in.size()));
  return {functional::bilinear(in[0], in[1], weight, bias)};
}
std::string Bilinear::extra_repr() const {
  return "in1_features=" + std::to_string(in1_) + ", in2_features=" + std::to_string(in2_) +
         ", out_features=" + std::to_string(out_) + ", bias=" + (bias.defined() ? "True" : "False");
}

// ---- losses ----
namespace {
void expect_two(const TensorList& in, const Module& m) {
  NNKIT_CHECK(in.size() == 2, "[", m.name(), "] expects (input, target), got ", in.size(), " tensors");
}
}  // namespace
TensorList MSELoss::forward_list(const TensorList& in) {
  expect_two(in, *this);
  return {functional::mse_loss(in[0], in[1], reduction_)};
}
TensorList L1Loss::forward_list(const TensorList& in) {
  expect_two(in, *this);
  return {functional::l1_loss(in[0], in[1], reduction_)};
}
CrossEntropyLoss::CrossEntropyLoss(functional::CrossEntropyOptions o) : Loss(o.reduction), options_(std::move(o)) {
  if (options_.weight.defined()) weight = options_.weight = register_buffer("weight", options_.weight);
}
TensorList CrossEntropyLoss::forward_list(const TensorList& in) {
  expect_two(in, *this);
  options_.weight = weight;
  return {functional::cross_entropy(in[0], in[1], options_)};
}
NLLLoss::NLLLoss(functional::CrossEntropyOptions o) : Loss(o.reduction), options_(std::move(o)) {
  if (options_.weight.defined()) weight = options_.weight = register_buffer("weight", options_.weight);
}
TensorList NLLLoss::forward_list(const TensorList& in) {
  expect_two(in, *this);
  options_.weight = weight;
  return {functional::nll_loss(in[0], in[1], options_)};
}
BCELoss::BCELoss(Tensor w, functional::Reduction r) : Loss(r) {
  if (w.defined()) weight = register_buffer("weight", w);
}
TensorList BCELoss::forward_list(const TensorList& in) {
  expect_two(in, *this);
  return {functional::binary_cross_entropy(in[0], in[1], weight, reduction_)};
}
BCEWithLogitsLoss::BCEWithLogitsLoss(Tensor w, Tensor pw, functional::Reduction r) : Loss(r) {
  if (w.defined()) weight = register_buffer("weight", w);
  if (pw.defined()) pos_weight = register_buffer("pos_weight", pw);
}
TensorList BCEWithLogitsLoss::forward_list(const TensorList& in) {
  expect_two(in, *this);
  return {functional::binary_cross_entropy_with_logits(in[0], in[1], weight, pos_weight, reduction_)};
}

}  // namespace nnkit::nn

namespace nnkit::nn {

// ---- ConvTranspose2d ----
ConvTranspose2d::ConvTranspose2d(const Options& o) : options_(o) {
  internal::check_conv_options("ConvTranspose2d", o.in_channels, o.out_channels, o.groups, "zeros");
  weight = register_parameter("weight",
                              empty({o.in_channels, o.out_channels / o.groups, o.kernel_size.h, o.kernel_size.w}));
  bias = register_parameter("bias", o.bias ? empty({o.out_channels}) : Tensor());
  reset_parameters();
}
void ConvTranspose2d::reset_parameters() { internal::reset_default_parameters(weight, bias); }
Tensor ConvTranspose2d::forward(const Tensor& x) {
  if (x.dim() != 4 || x.size(1) != options_.in_channels)
    fail(nnkit::detail::concat("expected input [N, ", options_.in_channels, ", H, W], got shape ", x.sizes()));
  const Options& o = options_;
  return functional::conv_transpose2d(x, weight, bias,
                                      {.stride = o.stride, .padding = o.padding, .output_padding = o.output_padding,
                                       .groups = o.groups, .dilation = o.dilation});
}
std::string ConvTranspose2d::extra_repr() const {
  const Options& o = options_;
  std::string s = std::to_string(o.in_channels) + ", " + std::to_string(o.out_channels) +
                  ", kernel_size=" + pair_str(o.kernel_size) + ", stride=" + pair_str(o.stride);
  if (!(o.padding == Pair(0))) s += ", padding=" + pair_str(o.padding);
  if (!(o.dilation == Pair(1))) s += ", dilation=" + pair_str(o.dilation);
  if (!(o.output_padding == Pair(0))) s += ", output_padding=" + pair_str(o.output_padding);
  if (o.groups != 1) s += ", groups=" + std::to_string(o.groups);
  if (!bias.defined()) s += ", bias=False";
  return s;
}

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
