#pragma once
// torchvision's ResNet building blocks (torchvision/models/resnet.py), with torchvision's
// module names, so that a block's state dict moves between Python and C++ unchanged:
//   conv1, bn1, relu, conv2, bn2, downsample.{0,1}
// This is the one ResNet block of the project: the examples, the benchmarks, the LibTorch parity
// and the GPU tests all use it.
#include "nnkit/nn/conv.h"
#include "nnkit/nn/module.h"

namespace nnkit::models {

// BasicBlock(inplanes, planes, stride, downsample, norm_layer), as torchvision's:
//   out = relu(bn2(conv2(relu(bn1(conv1(x))))) + downsample(x))
// conv1 is a 3x3 convolution with the block's stride, conv2 a 3x3 with stride 1, both without
// bias; one ReLU module (`relu`) is applied twice, as in torchvision (its hooks run twice).
// downsample: the module applied to the skip path. torchvision passes None when the shapes
// already agree and its ResNet builds Sequential(conv1x1(inplanes, planes, stride),
// norm_layer(planes)) otherwise; nnkit's BasicBlock builds that same Sequential itself when none
// is given and the shapes differ (where torchvision's block would fail), and an Identity
// (no parameters, so the state dict is torchvision's) when they agree.
// Initialization: the modules' defaults, as torchvision's block; models::init_resnet_ applies
// the initialization torchvision's ResNet gives its blocks.
class BasicBlock : public nn::Module {
 public:
  static constexpr int64_t expansion = 1;
  explicit BasicBlock(int64_t inplanes, int64_t planes, int64_t stride = 1, nn::Ptr<> downsample = nullptr,
                      nn::NormFactory norm_layer = nullptr);

  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "BasicBlock"; }

  nn::Ptr<nn::Conv2d> conv1, conv2;
  nn::Ptr<> bn1, relu, bn2, downsample;  // downsample: Identity or torchvision's Sequential
};

// torchvision ResNet's initialization of its modules, applied to every submodule of m:
// kaiming_normal_(fan_out, relu) for Conv2d weights, ones/zeros for the BatchNorm2d and
// GroupNorm affine parameters; with zero_init_residual, the last norm of each BasicBlock (bn2)
// starts at zero.
void init_resnet_(nn::Module& m, bool zero_init_residual = false);

}  // namespace nnkit::models
