// Convolution modules (include/nnkit/nn/conv.h); semantics from torch/nn/modules/conv.py.
#include "nnkit/nn/conv.h"

#include "nn/internal.h"

namespace nnkit::nn {

namespace {
using internal::pair_str;
}  // namespace

// ---- ConvNd ----
ConvNd::ConvNd(const char* who, const Spec& s) : spec_(s) {
  const int64_t in = s.in_channels, out = s.out_channels, groups = s.groups;
  const std::string& mode = s.padding_mode;
  NNKIT_CHECK(in > 0 && out > 0, "[", who, "] in_channels and out_channels must be positive, got ", in, " and ", out);
  NNKIT_CHECK(groups > 0 && in % groups == 0 && out % groups == 0, "[", who, "] in_channels (", in,
              ") and out_channels (", out, ") must be divisible by groups (", groups, ")");
  NNKIT_CHECK(mode == "zeros" || mode == "reflect" || mode == "replicate" || mode == "circular", "[", who,
              "] padding_mode must be zeros, reflect, replicate or circular, got '", mode, "'");
  NNKIT_CHECK(s.kernel_size.h > 0 && s.kernel_size.w > 0, "[", who, "] kernel_size must be positive");
  NNKIT_CHECK(s.padding.kind != Padding::Kind::Same || s.stride == Pair(1), "[", who,
              "] padding='same' is not supported for strided convolutions");
  Shape shape = s.transposed ? Shape{in, out / groups} : Shape{out, in / groups};
  if (s.dims == 2) shape.push_back(s.kernel_size.h);
  shape.push_back(s.kernel_size.w);
  weight = register_parameter("weight", empty(shape));
  bias = register_parameter("bias", s.bias ? empty({out}) : Tensor());
  reset_parameters();
}

void ConvNd::reset_parameters() { internal::reset_default_parameters(weight, bias); }

std::string ConvNd::extra_repr() const {
  const Spec& o = spec_;
  // A 1-D convolution prints 1-tuples, "(3,)", as PyTorch does.
  auto tuple = [&](Pair p) { return o.dims == 1 ? "(" + std::to_string(p.w) + ",)" : pair_str(p); };
  std::string s = std::to_string(o.in_channels) + ", " + std::to_string(o.out_channels) +
                  ", kernel_size=" + tuple(o.kernel_size) + ", stride=" + tuple(o.stride);
  if (o.padding.kind == Padding::Kind::Same) s += ", padding=same";
  else if (o.padding.kind == Padding::Kind::Valid) s += ", padding=valid";
  else if (!(o.padding.value == Pair(0))) s += ", padding=" + tuple(o.padding.value);
  if (!(o.dilation == Pair(1))) s += ", dilation=" + tuple(o.dilation);
  if (!(o.output_padding == Pair(0))) s += ", output_padding=" + tuple(o.output_padding);
  if (o.groups != 1) s += ", groups=" + std::to_string(o.groups);
  if (!bias.defined()) s += ", bias=False";
  if (o.padding_mode != "zeros") s += ", padding_mode=" + o.padding_mode;
  return s;
}

// Zero/reflect/replicate/circular padding and "same"/"valid" for a 4-D convolution; used by
// Conv2d and (through a height-1 view) Conv1d.
Tensor ConvNd::conv_forward(const Tensor& x, const Tensor& w) const {
  const Spec& o = spec_;
  const Padding& padding = o.padding;
  const Pair stride = o.stride, dilation = o.dilation;
  int64_t top = padding.value.h, bottom = padding.value.h, left = padding.value.w, right = padding.value.w;
  if (padding.kind == Padding::Kind::Valid) top = bottom = left = right = 0;
  if (padding.kind == Padding::Kind::Same) {
    NNKIT_CHECK(stride == Pair(1), "[Conv] padding='same' is not supported for strided convolutions");
    const int64_t th = dilation.h * (w.size(2) - 1), tw = dilation.w * (w.size(3) - 1);
    top = th / 2, bottom = th - top, left = tw / 2, right = tw - left;
  }
  if (o.padding_mode == "zeros" && top == bottom && left == right)
    return functional::conv2d(x, w, bias,
                              {.stride = stride, .padding = Pair(top, left), .dilation = dilation, .groups = o.groups});
  Tensor xp = pad(x, {left, right, top, bottom}, o.padding_mode == "zeros" ? "constant" : o.padding_mode);
  return functional::conv2d(xp, w, bias, {.stride = stride, .padding = 0, .dilation = dilation, .groups = o.groups});
}

// ---- Conv1d ----
Conv1d::Conv1d(const Options& o)
    : ConvNd("Conv1d",
             {.dims = 1,
              .transposed = false,
              .in_channels = o.in_channels,
              .out_channels = o.out_channels,
              .kernel_size = Pair(1, o.kernel_size),
              .stride = Pair(1, o.stride),
              .padding = [&] {
                Padding p = o.padding;
                p.value = Pair(0, o.padding.value.w);
                return p;
              }(),
              .dilation = Pair(1, o.dilation),
              .output_padding = 0,
              .groups = o.groups,
              .bias = o.bias,
              .padding_mode = o.padding_mode}),
      options_(o) {}

Tensor Conv1d::forward(const Tensor& x) {
  if (x.dim() != 3 || x.size(1) != options_.in_channels)
    fail(nnkit::detail::concat("expected input [N, ", options_.in_channels, ", L], got shape ", x.sizes()));
  return conv_forward(x.unsqueeze(2), weight.unsqueeze(2)).squeeze(2);
}

// ---- Conv2d ----
Conv2d::Conv2d(const Options& o)
    : ConvNd("Conv2d", {.dims = 2,
                        .transposed = false,
                        .in_channels = o.in_channels,
                        .out_channels = o.out_channels,
                        .kernel_size = o.kernel_size,
                        .stride = o.stride,
                        .padding = o.padding,
                        .dilation = o.dilation,
                        .output_padding = 0,
                        .groups = o.groups,
                        .bias = o.bias,
                        .padding_mode = o.padding_mode}),
      options_(o) {}

Tensor Conv2d::forward(const Tensor& x) {
  if (x.dim() != 4 || x.size(1) != options_.in_channels)
    fail(nnkit::detail::concat("expected input [N, ", options_.in_channels, ", H, W], got shape ", x.sizes()));
  return conv_forward(x, weight);
}

// ---- ConvTranspose2d ----
ConvTranspose2d::ConvTranspose2d(const Options& o)
    : ConvNd("ConvTranspose2d", {.dims = 2,
                                 .transposed = true,
                                 .in_channels = o.in_channels,
                                 .out_channels = o.out_channels,
                                 .kernel_size = o.kernel_size,
                                 .stride = o.stride,
                                 .padding = o.padding,
                                 .dilation = o.dilation,
                                 .output_padding = o.output_padding,
                                 .groups = o.groups,
                                 .bias = o.bias,
                                 .padding_mode = "zeros"}),
      options_(o) {}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  if (x.dim() != 4 || x.size(1) != options_.in_channels)
    fail(nnkit::detail::concat("expected input [N, ", options_.in_channels, ", H, W], got shape ", x.sizes()));
  const Options& o = options_;
  return functional::conv_transpose2d(x, weight, bias,
                                      {.stride = o.stride, .padding = o.padding, .output_padding = o.output_padding,
                                       .groups = o.groups, .dilation = o.dilation});
}

}  // namespace nnkit::nn
