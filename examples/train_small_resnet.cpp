// Acceptance example from shared/spec/train_small_resnet.cpp, built and run by the tests (ctest example_train_small_resnet).
// Target user experience: a training loop, the way a LibTorch or PyTorch user writes one.
#include <nnkit/nnkit.h>

#include <iostream>

using nnkit::Tensor;
namespace nn = nnkit::nn;
namespace F = nnkit::nn::functional;

int main() {
  nnkit::manual_seed(0);
  nnkit::Device device = nnkit::cuda::is_available() ? nnkit::Device::cuda() : nnkit::Device::cpu();

  auto model = nn::make<nn::Sequential>(
      nn::make<nn::Conv2d>({.in_channels = 3, .out_channels = 16, .kernel_size = 3, .padding = 1, .bias = false}),
      nn::make<nn::BatchNorm2d>(16), nn::make<nn::ReLU>(),
      nn::make<nn::MaxPool2d>(2),
      nn::make<nn::AdaptiveAvgPool2d>(1), nn::make<nn::Flatten>(),
      nn::make<nn::Linear>(16, 10));
  model->to(device);

  nnkit::optim::SGD opt(model->parameters(), {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4});
  Tensor images = nnkit::randn({64, 3, 32, 32}).to(device);
  Tensor labels = nnkit::randint(0, 10, {64}).to(device);

  float first = 0, last = 0;
  for (int step = 0; step < 50; ++step) {
    opt.zero_grad();
    Tensor loss = F::cross_entropy(model(images), labels);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item<float>();
  }
  std::cout << "loss " << first << " -> " << last << "\n";
  return last < first ? 0 : 1;  // it learns
}
