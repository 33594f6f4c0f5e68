// Acceptance example from shared/spec/resnet_block.cpp, built and run by the tests (ctest example_resnet_block).
// Target user experience: the well-designed ResNet block, written by a user of the library.
// Every pattern of the module-design guide shows here: substitutable norm and activation,
// Identity instead of an empty slot, every operation a hookable module, reset_parameters(),
// defensive bias checks, inspection by name. The API shown is the target; where a better
// design is found, the project's own examples/ and docs/ record the final form.
#include <nnkit/nnkit.h>

#include <cmath>
#include <iostream>

using nnkit::Tensor;
namespace nn = nnkit::nn;
namespace init = nnkit::nn::init;

class ResNetBlock : public nn::Module {
 public:
  ResNetBlock(int64_t in_channels, int64_t out_channels, int64_t stride = 1,
              nn::NormFactory norm_layer = nn::factory<nn::BatchNorm2d>(),
              nn::ActivationFactory activation = nn::factory<nn::ReLU>(),
              bool bias = false)
      : in_channels_(in_channels), out_channels_(out_channels), stride_(stride) {
    conv1 = register_module<nn::Conv2d>("conv1", {.in_channels = in_channels, .out_channels = out_channels,
                                                  .kernel_size = 3, .stride = stride, .padding = 1, .bias = bias});
    norm1 = register_module("norm1", norm_layer(out_channels));
    act1 = register_module("act1", activation());
    conv2 = register_module<nn::Conv2d>("conv2", {.in_channels = out_channels, .out_channels = out_channels,
                                                  .kernel_size = 3, .stride = 1, .padding = 1, .bias = bias});
    norm2 = register_module("norm2", norm_layer(out_channels));
    if (stride != 1 || in_channels != out_channels) {
      skip = register_module("skip", nn::make<nn::Sequential>(
                                         nn::make<nn::Conv2d>({.in_channels = in_channels, .out_channels = out_channels,
                                                               .kernel_size = 1, .stride = stride, .bias = bias}),
                                         norm_layer(out_channels)));
    } else {
      skip = register_module("skip", nn::make<nn::Identity>());  // never an empty slot
    }
    act2 = register_module("act2", activation());
    reset_parameters();
  }

  void reset_parameters() override {
    for (nn::Module& m : modules()) {  // works inside the constructor
      if (auto* conv = m.as<nn::Conv2d>()) {
        init::kaiming_normal_(conv->weight, {.mode = init::FanMode::FanOut, .nonlinearity = init::Nonlinearity::ReLU});
        if (conv->bias.defined()) init::zeros_(conv->bias);
      } else if (auto* bn = m.as<nn::BatchNorm2d>()) {
        init::ones_(bn->weight);
        init::zeros_(bn->bias);
      }
    }
  }

  Tensor forward(const Tensor& x) override {
    Tensor out = act1(norm1(conv1(x)));  // calls through handles run hooks
    out = norm2(conv2(out));
    return act2(out + skip(x));
  }

  nn::Ptr<nn::Conv2d> conv1, conv2;
  nn::Ptr<> norm1, norm2, act1, act2, skip;  // nn::Ptr<> holds any module

 private:
  int64_t in_channels_, out_channels_, stride_;  // configuration, kept for reproducibility
};

int main() {
  nnkit::manual_seed(0);
  auto block1 = nn::make<ResNetBlock>(64, 128, 2);
  auto block2 = nn::make<ResNetBlock>(64, 128, 1, nn::factory<nn::GroupNorm>(32), nn::factory<nn::GELU>());

  // Any operation can be hooked; the handle must be kept ([[nodiscard]]), and removes the hook.
  nn::HookHandle handle = block1->act1->register_forward_hook(
      [](nn::Module&, const nn::TensorList&, nn::TensorList& outputs) {
        std::cout << "ReLU output shape: " << outputs[0].sizes() << "\n";
      });

  Tensor x = nnkit::randn({2, 64, 32, 32});
  Tensor y1 = block1(x);
  Tensor y2 = block2(x);
  handle.remove();

  block1->reset_parameters();  // re-initialization works at any time

  for (auto& [name, module] : block1->named_modules()) std::cout << name << ": " << module.name() << "\n";
  std::cout << *block2 << "\n";  // PyTorch-style repr

  // Parameters and buffers carry PyTorch's names, so state dicts interchange with PyTorch.
  for (auto& [name, p] : block1->named_parameters()) std::cout << name << " " << p.sizes() << "\n";
  for (auto& [name, b] : block1->named_buffers()) std::cout << name << " " << b.sizes() << "\n";

  // The block computes what its definition says: its output in training mode written out from
  // functional convolutions and batch statistics (catches a wrong kernel or a mis-wired module).
  namespace F = nnkit::nn::functional;
  auto p = [&](const std::string& name) { return block1->named_parameters().at(name); };
  auto batch_norm = [](const Tensor& t, const Tensor& w, const Tensor& b) {
    Tensor mean = t.mean({0, 2, 3}, true), var = t.var({0, 2, 3}, 0, true);
    return (t - mean) / (var + 1e-5).sqrt() * w.view({1, -1, 1, 1}) + b.view({1, -1, 1, 1});
  };
  Tensor h = batch_norm(F::conv2d(x, p("conv1.weight"), {}, {.stride = 2, .padding = 1}), p("norm1.weight"), p("norm1.bias")).relu();
  h = batch_norm(F::conv2d(h, p("conv2.weight"), {}, {.padding = 1}), p("norm2.weight"), p("norm2.bias"));
  Tensor skip = batch_norm(F::conv2d(x, p("skip.0.weight"), {}, {.stride = 2}), p("skip.1.weight"), p("skip.1.bias"));
  Tensor expected = (h + skip).relu(), got = block1(x);
  double err = (got - expected).abs().max().item<double>() / expected.abs().max().item<double>();
  std::cout << "block output vs. its definition: relative error " << err << "\n";
  bool shapes_ok = y1.sizes() == std::vector<int64_t>{2, 128, 16, 16} && y2.sizes() == std::vector<int64_t>{2, 128, 32, 32};
  return shapes_ok && err < 1e-4 && std::isfinite(y2.sum().item<double>()) ? 0 : 1;
}
