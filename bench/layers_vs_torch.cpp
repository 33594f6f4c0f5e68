// Two workloads of issue [3/7] besides the ResNet block: an MLP training step and a 1x1
// convolution (forward + backward), nnkit vs LibTorch in one run, same threads and inputs.
#include <omp.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <nnkit/nnkit.h>

#include "bench_util.h"
#include <vector>

namespace nn = nnkit::nn;

using bench::median_ms;

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : omp_get_max_threads();
  bench::set_threads(threads);
  std::printf("%d thread(s), median of 9\n\n| work | nnkit ms | LibTorch ms | nnkit/LibTorch |\n|---|---|---|---|\n", threads);

  {  // MLP 784-512-512-10, batch 128: forward, cross-entropy, backward, SGD step
    nnkit::manual_seed(0);
    auto m = nn::make<nn::Sequential>(nn::make<nn::Linear>(784, 512), nn::make<nn::ReLU>(), nn::make<nn::Linear>(512, 512),
                                      nn::make<nn::ReLU>(), nn::make<nn::Linear>(512, 10));
    nnkit::optim::SGD opt(m->parameters(), {.lr = 0.01, .momentum = 0.9});
    torch::nn::Sequential tm(torch::nn::Linear(784, 512), torch::nn::ReLU(), torch::nn::Linear(512, 512), torch::nn::ReLU(),
                             torch::nn::Linear(512, 10));
    torch::optim::SGD topt(tm->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
    nnkit::Tensor x = nnkit::randn({128, 784}), y = nnkit::randint(0, 10, {128});
    torch::Tensor tx = torch::randn({128, 784}), ty = torch::randint(0, 10, {128});
    double a = median_ms([&] {
      opt.zero_grad();
      nn::functional::cross_entropy(m(x), y).backward();
      opt.step();
    }, 9);
    double b = median_ms([&] {
      topt.zero_grad();
      torch::nn::functional::cross_entropy(tm->forward(tx), ty).backward();
      topt.step();
    }, 9);
    std::printf("| MLP 784-512-512-10 train step, batch 128 | %.2f | %.2f | %.2f |\n", a, b, a / b);
  }
  {  // 1x1 convolution 256 -> 64 channels, 8 x 28 x 28: forward + backward
    nnkit::manual_seed(0);
    auto c = nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 256, .out_channels = 64, .kernel_size = 1, .bias = false});
    torch::nn::Conv2d tc(torch::nn::Conv2dOptions(256, 64, 1).bias(false));
    nnkit::Tensor x = nnkit::randn({8, 256, 28, 28}, {.requires_grad = true});
    torch::Tensor tx = torch::randn({8, 256, 28, 28}, torch::requires_grad());
    double a = median_ms([&] { c(x).sum().backward(); }, 9);
    double b = median_ms([&] { tc(tx).sum().backward(); }, 9);
    std::printf("| 1x1 conv 256->64, 8x28x28, fwd+bwd | %.2f | %.2f | %.2f |\n", a, b, a / b);
    nnkit::NoGradGuard g;
    torch::NoGradGuard tg;
    a = median_ms([&] { c(x); }, 9);
    b = median_ms([&] { tc(tx); }, 9);
    std::printf("| 1x1 conv 256->64, 8x28x28, forward | %.2f | %.2f | %.2f |\n", a, b, a / b);
  }
  return 0;
}
