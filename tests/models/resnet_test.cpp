// nnkit::models ResNets (src/models/resnet.cpp) against torchvision's structure: parameter
// counts and state-dict sizes as torchvision 0.14 reports them, the module order, shapes,
// zero_init_residual and errors. Loading torchvision's own state dicts and reproducing its
// outputs: tests/interop (resnet18, resnet50, resnext50_32x4d).
#include <gtest/gtest.h>

#include "test_util.h"

#include <cmath>
#include <nnkit/nnkit.h>

using namespace nnkit;
namespace nn = nnkit::nn;
using nnkit::test_util::error_of;

namespace {
int64_t count_parameters(nn::Module& m) {
  int64_t n = 0;
  for (const Tensor& p : m.parameters()) n += p.numel();
  return n;
}
// Built once for the suite (initializing 37M parameters takes a while): a resnet18 as
// torchvision's default, and a resnet50 with zero_init_residual and dilated layer3/layer4.
models::ResNet& r18() {
  static nn::Ptr<models::ResNet> m = models::resnet18();
  return *m;
}
models::ResNet& r50() {
  static nn::Ptr<models::ResNet> m =
      models::resnet50({.zero_init_residual = true, .replace_stride_with_dilation = {false, true, true}});
  return *m;
}
}  // namespace

TEST(ResNet, ParameterCountsAndStateDictsAsTorchvision) {
  // sum(p.numel() for p in model.parameters()), len(model.state_dict()) in torchvision
  // (dilation does not change them).
  struct Case {
    const char* name;
    models::ResNet& m;
    int64_t params;
    size_t entries;
  };
  for (const Case& c : {Case{"resnet18", r18(), 11689512, 122}, Case{"resnet50", r50(), 25557032, 320}}) {
    EXPECT_EQ(count_parameters(c.m), c.params) << c.name;
    StateDict sd = c.m.state_dict();
    EXPECT_EQ(sd.size(), c.entries) << c.name;
    EXPECT_EQ(sd.keys().front(), "conv1.weight") << c.name;
    EXPECT_EQ(sd.keys().back(), "fc.bias") << c.name;
  }
}

TEST(ResNet, ModuleNamesAndOrderFollowTorchvision) {
  models::ResNet* m = &r18();
  std::vector<std::string> top;
  for (auto& [name, child] : m->named_children()) top.push_back(name);
  EXPECT_EQ(top, (std::vector<std::string>{"conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                                           "avgpool", "fc"}));
  std::vector<std::string> block;
  for (auto& [name, child] : m->layer2->at(0).named_children()) block.push_back(name);
  EXPECT_EQ(block, (std::vector<std::string>{"conv1", "bn1", "relu", "conv2", "bn2", "downsample"}));
  models::ResNet* r50 = &::r50();
  block.clear();
  for (auto& [name, child] : r50->layer1->at(0).named_children()) block.push_back(name);
  EXPECT_EQ(block, (std::vector<std::string>{"conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "relu", "downsample"}));
  // A block whose shapes agree has an Identity skip (no state: the keys are torchvision's).
  EXPECT_EQ(m->layer1->at(0).as<models::BasicBlock>()->downsample->name(), "Identity");
  EXPECT_TRUE(r50->state_dict().contains("layer3.0.downsample.1.running_var"));
  EXPECT_FALSE(r50->state_dict().contains("layer3.1.downsample.0.weight"));
  // The ResNet v1.5 stride sits in the 3x3 convolution of Bottleneck.
  EXPECT_EQ(r50->layer2->at(0).as<models::Bottleneck>()->conv2->repr(),
            "Conv2d(128, 128, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)");
}

TEST(ResNet, ForwardShapesTrainingStepAndInit) {
  manual_seed(0);
  auto m = models::resnet18({.num_classes = 7});
  Tensor x = randn({2, 3, 40, 48});
  Tensor y = m(x);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 7}));
  nn::functional::cross_entropy(y, from_vector(std::vector<int64_t>{1, 5})).backward();
  EXPECT_TRUE(m->conv1->weight.grad().defined());
  EXPECT_GT(m->fc->weight.grad().abs().sum().item<double>(), 0);
  // torchvision's init: conv weights kaiming_normal_(fan_out, relu): std sqrt(2 / (64 * 49)).
  EXPECT_NEAR(m->conv1->weight.std().item<double>(), std::sqrt(2.0 / (64 * 49)), 0.01);
  auto& bn = *m->bn1->as<nn::BatchNorm2d>();
  EXPECT_TRUE(bn.weight.equal(ones({64})));
  EXPECT_TRUE(bn.bias.equal(zeros({64})));
  // zero_init_residual: the last norm of every block starts at zero.
  models::ResNet* z = &r50();
  for (auto& blocks : {z->layer1, z->layer4})
    for (auto& b : *blocks) EXPECT_EQ(b.as<models::Bottleneck>()->bn3->as<nn::BatchNorm2d>()->weight.abs().sum().item<double>(), 0);
  // Dilation instead of stride keeps layer4's resolution (dense prediction).
  models::ResNet* d = &r50();
  Tensor features;
  {
    NoGradGuard g;
    d->eval();
    Tensor h = d->maxpool(d->relu(d->bn1(d->conv1(randn({1, 3, 64, 64})))));
    features = d->layer4(d->layer3(d->layer2(d->layer1(h))));
  }
  EXPECT_EQ(features.sizes(), (std::vector<int64_t>{1, 2048, 8, 8}));
}

TEST(ResNet, ErrorsNameTheModelAndWhatWasExpected) {
  auto m = models::resnet18({.num_classes = 10});
  EXPECT_NE(error_of([&] { m(randn({2, 1, 32, 32})); }).find("[ResNet] expected input [N, 3, H, W]"), std::string::npos);
  EXPECT_NE(error_of([] { models::resnet18({.groups = 2}); }).find("BasicBlock only supports groups=1"), std::string::npos);
  EXPECT_NE(error_of([] { models::resnet34({.replace_stride_with_dilation = {false, false, true}}); }).find("dilation > 1"),
            std::string::npos);
  EXPECT_NE(error_of([] { nn::make<models::BasicBlock>(0, 8); }).find("[BasicBlock]"), std::string::npos);
}
