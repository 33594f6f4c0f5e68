#pragma once
// torchvision's ResNets (torchvision/models/resnet.py): BasicBlock, Bottleneck, ResNet and
// resnet18/34/50/101/152, resnext50_32x4d, wide_resnet50_2, with torchvision's module names, so
// that a torchvision state dict loads strictly and reproduces torchvision's outputs:
//   conv1, bn1, relu, maxpool, layer1..layer4 (blocks "0", "1", ...), avgpool, fc
// BasicBlock is the one ResNet block of the project: the examples, the benchmarks, the LibTorch
// parity and the GPU tests all use it. No weights are downloaded: load a state dict saved by
// Python (`torch.save(model.state_dict(), "resnet18.pt")` -> nnkit::load_pytorch).
#include <array>

#include "nnkit/nn/container.h"
#include "nnkit/nn/conv.h"
#include "nnkit/nn/linear.h"
#include "nnkit/nn/module.h"
#include "nnkit/nn/pooling.h"

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

// Bottleneck(inplanes, planes, stride, downsample, groups, base_width, dilation, norm_layer), as
// torchvision's (the ResNet v1.5 variant: the stride sits in the 3x3 convolution):
//   out = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + downsample(x))
// conv1 1x1 inplanes -> width, conv2 3x3 width -> width (stride, groups, dilation), conv3 1x1
// width -> planes * 4, width = planes * base_width / 64 * groups. downsample as for BasicBlock.
class Bottleneck : public nn::Module {
 public:
  static constexpr int64_t expansion = 4;
  explicit Bottleneck(int64_t inplanes, int64_t planes, int64_t stride = 1, nn::Ptr<> downsample = nullptr,
                      int64_t groups = 1, int64_t base_width = 64, int64_t dilation = 1,
                      nn::NormFactory norm_layer = nullptr);

  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Bottleneck"; }

  nn::Ptr<nn::Conv2d> conv1, conv2, conv3;
  nn::Ptr<> bn1, bn2, bn3, relu, downsample;
};

// torchvision's ResNet options (its constructor's keyword arguments).
struct ResNetOptions {
  int64_t num_classes = 1000;
  bool zero_init_residual = false;
  int64_t groups = 1;
  int64_t width_per_group = 64;
  // Replace the stride of layer2..layer4 with dilation (for dense prediction).
  std::array<bool, 3> replace_stride_with_dilation = {false, false, false};
  nn::NormFactory norm_layer = nullptr;  // BatchNorm2d
};

enum class ResNetBlock { Basic, Bottleneck };

// torchvision's ResNet: stem (7x7 conv stride 2, norm, ReLU, 3x3 max pool stride 2), four
// stages of blocks (64, 128, 256, 512 planes; strides 1, 2, 2, 2), global average pool, fc.
// Input [N, 3, H, W] (any H, W >= 32), output [N, num_classes] logits.
class ResNet : public nn::Module {
 public:
  ResNet(ResNetBlock block, std::array<int64_t, 4> layers, ResNetOptions options = {});
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "ResNet"; }

  nn::Ptr<nn::Conv2d> conv1;
  nn::Ptr<> bn1, relu;
  nn::Ptr<nn::MaxPool2d> maxpool;
  nn::Ptr<nn::Sequential> layer1, layer2, layer3, layer4;
  nn::Ptr<nn::AdaptiveAvgPool2d> avgpool;
  nn::Ptr<nn::Linear> fc;

 private:
  nn::Ptr<nn::Sequential> make_layer(ResNetBlock block, int64_t planes, int64_t blocks, int64_t stride, bool dilate);
  ResNetOptions options_;
  int64_t inplanes_ = 64, dilation_ = 1;
};

// torchvision's model builders (random initialization; weights=None).
nn::Ptr<ResNet> resnet18(ResNetOptions options = {});
nn::Ptr<ResNet> resnet34(ResNetOptions options = {});
nn::Ptr<ResNet> resnet50(ResNetOptions options = {});
nn::Ptr<ResNet> resnet101(ResNetOptions options = {});
nn::Ptr<ResNet> resnet152(ResNetOptions options = {});
nn::Ptr<ResNet> resnext50_32x4d(ResNetOptions options = {});    // groups 32, width_per_group 4
nn::Ptr<ResNet> wide_resnet50_2(ResNetOptions options = {});    // width_per_group 128

// torchvision ResNet's initialization of its modules, applied to every submodule of m:
// kaiming_normal_(fan_out, relu) for Conv2d weights, ones/zeros for the BatchNorm2d and
// GroupNorm affine parameters; with zero_init_residual, the last norm of each block (BasicBlock's
// bn2, Bottleneck's bn3) starts at zero. ResNet's constructor applies it.
void init_resnet_(nn::Module& m, bool zero_init_residual = false);

}  // namespace nnkit::models
