// torchvision's ResNets (torchvision/models/resnet.py: BasicBlock, Bottleneck, ResNet with
// _make_layer and the initialization loop of its __init__, and the model builders).
// See include/nnkit/models/resnet.h.
#include "nnkit/models/resnet.h"

#include "nnkit/nn/activation.h"
#include "nnkit/nn/container.h"
#include "nnkit/nn/init.h"
#include "nnkit/nn/linear.h"
#include "nnkit/nn/normalization.h"

namespace nnkit::models {
namespace {
nn::Ptr<nn::Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t groups = 1, int64_t dilation = 1) {
  return nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = in, .out_channels = out, .kernel_size = k, .stride = stride,
                                                  .padding = k == 3 ? dilation : 0, .dilation = dilation, .groups = groups,
                                                  .bias = false});
}

// _make_layer's downsample when the shapes change, Identity otherwise (never an empty slot).
nn::Ptr<> default_downsample(int64_t inplanes, int64_t outplanes, int64_t stride, const nn::NormFactory& norm_layer) {
  if (stride != 1 || inplanes != outplanes)
    return nn::Ptr<>(nn::make<nn::Sequential>(conv(inplanes, outplanes, 1, stride), norm_layer(outplanes)));
  return nn::Ptr<>(nn::make<nn::Identity>());
}
}  // namespace

BasicBlock::BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, nn::Ptr<> downsample_module,
                       nn::NormFactory norm_layer) {
  if (!norm_layer) norm_layer = nn::factory<nn::BatchNorm2d>();
  NNKIT_CHECK(inplanes > 0 && planes > 0 && stride > 0, "[BasicBlock] inplanes, planes and stride must be positive, got ",
              inplanes, ", ", planes, ", ", stride);
  conv1 = register_module<nn::Conv2d>("conv1", {.in_channels = inplanes, .out_channels = planes, .kernel_size = 3,
                                                .stride = stride, .padding = 1, .bias = false});
  bn1 = register_module("bn1", norm_layer(planes));
  relu = register_module("relu", nn::Ptr<>(nn::make<nn::ReLU>()));
  conv2 = register_module<nn::Conv2d>("conv2", {.in_channels = planes, .out_channels = planes, .kernel_size = 3,
                                                .stride = 1, .padding = 1, .bias = false});
  bn2 = register_module("bn2", norm_layer(planes));
  if (!downsample_module) downsample_module = default_downsample(inplanes, planes * expansion, stride, norm_layer);
  downsample = register_module("downsample", downsample_module);
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = relu(bn1(conv1(x)));
  out = bn2(conv2(out));
  return relu(out + downsample(x));
}

Bottleneck::Bottleneck(int64_t inplanes, int64_t planes, int64_t stride, nn::Ptr<> downsample_module, int64_t groups,
                       int64_t base_width, int64_t dilation, nn::NormFactory norm_layer) {
  if (!norm_layer) norm_layer = nn::factory<nn::BatchNorm2d>();
  NNKIT_CHECK(inplanes > 0 && planes > 0 && stride > 0 && groups > 0 && base_width > 0 && dilation > 0,
              "[Bottleneck] inplanes, planes, stride, groups, base_width and dilation must be positive");
  const int64_t width = planes * base_width / 64 * groups;  // int(planes * (base_width / 64.0)) * groups
  conv1 = register_module("conv1", conv(inplanes, width, 1));
  bn1 = register_module("bn1", norm_layer(width));
  conv2 = register_module("conv2", conv(width, width, 3, stride, groups, dilation));
  bn2 = register_module("bn2", norm_layer(width));
  conv3 = register_module("conv3", conv(width, planes * expansion, 1));
  bn3 = register_module("bn3", norm_layer(planes * expansion));
  relu = register_module("relu", nn::Ptr<>(nn::make<nn::ReLU>()));
  if (!downsample_module) downsample_module = default_downsample(inplanes, planes * expansion, stride, norm_layer);
  downsample = register_module("downsample", downsample_module);
}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor out = relu(bn1(conv1(x)));
  out = relu(bn2(conv2(out)));
  out = bn3(conv3(out));
  return relu(out + downsample(x));
}

ResNet::ResNet(ResNetBlock block, std::array<int64_t, 4> layers, ResNetOptions options) : options_(std::move(options)) {
  if (!options_.norm_layer) options_.norm_layer = nn::factory<nn::BatchNorm2d>();
  NNKIT_CHECK(options_.num_classes > 0 && options_.groups > 0 && options_.width_per_group > 0,
              "[ResNet] num_classes, groups and width_per_group must be positive");
  for (int64_t n : layers) NNKIT_CHECK(n > 0, "[ResNet] every stage needs at least one block, got ", n);
  NNKIT_CHECK(block == ResNetBlock::Bottleneck || (options_.groups == 1 && options_.width_per_group == 64),
              "[ResNet] BasicBlock only supports groups=1 and width_per_group=64 (as torchvision's)");
  NNKIT_CHECK(block == ResNetBlock::Bottleneck ||
                  !(options_.replace_stride_with_dilation[0] || options_.replace_stride_with_dilation[1] ||
                    options_.replace_stride_with_dilation[2]),
              "[ResNet] dilation > 1 not supported in BasicBlock (as torchvision's)");
  conv1 = register_module<nn::Conv2d>("conv1", {.in_channels = 3, .out_channels = 64, .kernel_size = 7, .stride = 2,
                                                .padding = 3, .bias = false});
  bn1 = register_module("bn1", options_.norm_layer(64));
  relu = register_module("relu", nn::Ptr<>(nn::make<nn::ReLU>()));
  maxpool = register_module("maxpool", nn::make<nn::MaxPool2d>(3, 2, 1));
  layer1 = register_module("layer1", make_layer(block, 64, layers[0], 1, false));
  layer2 = register_module("layer2", make_layer(block, 128, layers[1], 2, options_.replace_stride_with_dilation[0]));
  layer3 = register_module("layer3", make_layer(block, 256, layers[2], 2, options_.replace_stride_with_dilation[1]));
  layer4 = register_module("layer4", make_layer(block, 512, layers[3], 2, options_.replace_stride_with_dilation[2]));
  avgpool = register_module("avgpool", nn::make<nn::AdaptiveAvgPool2d>(1));
  const int64_t expansion = block == ResNetBlock::Basic ? BasicBlock::expansion : Bottleneck::expansion;
  fc = register_module("fc", nn::make<nn::Linear>(512 * expansion, options_.num_classes));
  init_resnet_(*this, options_.zero_init_residual);
}

nn::Ptr<nn::Sequential> ResNet::make_layer(ResNetBlock block, int64_t planes, int64_t blocks, int64_t stride, bool dilate) {
  const int64_t expansion = block == ResNetBlock::Basic ? BasicBlock::expansion : Bottleneck::expansion;
  const int64_t previous_dilation = dilation_;
  if (dilate) {
    dilation_ *= stride;
    stride = 1;
  }
  auto layer = nn::make<nn::Sequential>();
  auto add = [&](int64_t inplanes, int64_t s, int64_t dilation, nn::Ptr<> downsample) {
    if (block == ResNetBlock::Basic)
      layer->append(nn::Ptr<>(nn::make<BasicBlock>(inplanes, planes, s, std::move(downsample), options_.norm_layer)));
    else
      layer->append(nn::Ptr<>(nn::make<Bottleneck>(inplanes, planes, s, std::move(downsample), options_.groups,
                                                   options_.width_per_group, dilation, options_.norm_layer)));
  };
  add(inplanes_, stride, previous_dilation, default_downsample(inplanes_, planes * expansion, stride, options_.norm_layer));
  inplanes_ = planes * expansion;
  for (int64_t i = 1; i < blocks; ++i) add(inplanes_, 1, dilation_, nullptr);
  return layer;
}

Tensor ResNet::forward(const Tensor& x) {
  NNKIT_CHECK(x.dim() == 4 && x.size(1) == 3, "[ResNet] expected input [N, 3, H, W], got ", x.sizes());
  Tensor h = maxpool(relu(bn1(conv1(x))));
  h = layer4(layer3(layer2(layer1(h))));
  return fc(avgpool(h).flatten(1));
}

nn::Ptr<ResNet> resnet18(ResNetOptions options) { return nn::make<ResNet>(ResNetBlock::Basic, std::array<int64_t, 4>{2, 2, 2, 2}, std::move(options)); }
nn::Ptr<ResNet> resnet34(ResNetOptions options) { return nn::make<ResNet>(ResNetBlock::Basic, std::array<int64_t, 4>{3, 4, 6, 3}, std::move(options)); }
nn::Ptr<ResNet> resnet50(ResNetOptions options) { return nn::make<ResNet>(ResNetBlock::Bottleneck, std::array<int64_t, 4>{3, 4, 6, 3}, std::move(options)); }
nn::Ptr<ResNet> resnet101(ResNetOptions options) { return nn::make<ResNet>(ResNetBlock::Bottleneck, std::array<int64_t, 4>{3, 4, 23, 3}, std::move(options)); }
nn::Ptr<ResNet> resnet152(ResNetOptions options) { return nn::make<ResNet>(ResNetBlock::Bottleneck, std::array<int64_t, 4>{3, 8, 36, 3}, std::move(options)); }
nn::Ptr<ResNet> resnext50_32x4d(ResNetOptions options) {
  options.groups = 32;
  options.width_per_group = 4;
  return resnet50(std::move(options));
}
nn::Ptr<ResNet> wide_resnet50_2(ResNetOptions options) {
  options.width_per_group = 64 * 2;
  return resnet50(std::move(options));
}

void init_resnet_(nn::Module& m, bool zero_init_residual) {
  for (nn::Module& sub : m.modules()) {
    if (auto* conv = sub.as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(conv->weight, {.mode = nn::init::FanMode::FanOut, .nonlinearity = nn::init::Nonlinearity::ReLU});
    } else if (auto* bn = sub.as<nn::BatchNorm2d>()) {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    } else if (auto* gn = sub.as<nn::GroupNorm>()) {
      if (gn->weight.defined()) nn::init::ones_(gn->weight);
      if (gn->bias.defined()) nn::init::zeros_(gn->bias);
    }
  }
  if (!zero_init_residual) return;
  for (nn::Module& sub : m.modules()) {
    nn::Module* last_norm = nullptr;
    if (auto* block = sub.as<BasicBlock>()) last_norm = block->bn2.get();
    if (auto* block = sub.as<Bottleneck>()) last_norm = block->bn3.get();
    if (auto* bn = last_norm ? last_norm->as<nn::BatchNorm2d>() : nullptr; bn && bn->weight.defined())
      nn::init::zeros_(bn->weight);
  }
}

}  // namespace nnkit::models
