// torchvision's ResNet blocks (torchvision/models/resnet.py: BasicBlock, and the initialization
// loop of ResNet.__init__). See include/nnkit/models/resnet.h.
#include "nnkit/models/resnet.h"

#include "nnkit/nn/activation.h"
#include "nnkit/nn/container.h"
#include "nnkit/nn/init.h"
#include "nnkit/nn/linear.h"
#include "nnkit/nn/normalization.h"

namespace nnkit::models {

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
  if (!downsample_module) {
    if (stride != 1 || inplanes != planes * expansion)
      downsample_module = nn::Ptr<>(nn::make<nn::Sequential>(
          nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = inplanes, .out_channels = planes * expansion,
                                                   .kernel_size = 1, .stride = stride, .bias = false}),
          norm_layer(planes * expansion)));
    else
      downsample_module = nn::Ptr<>(nn::make<nn::Identity>());
  }
  downsample = register_module("downsample", downsample_module);
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = relu(bn1(conv1(x)));
  out = bn2(conv2(out));
  return relu(out + downsample(x));
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
  for (nn::Module& sub : m.modules())
    if (auto* block = sub.as<BasicBlock>())
      if (auto* bn = block->bn2->as<nn::BatchNorm2d>(); bn && bn->weight.defined()) nn::init::zeros_(bn->weight);
}

}  // namespace nnkit::models
