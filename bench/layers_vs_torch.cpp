// Two workloads besides the ResNet block: an MLP training step and a 1x1 convolution
// (forward + backward), nnkit vs LibTorch in one run: the same weights and inputs on both
// sides (checked to give the same result before timing), the same threads, and nnkit's and
// LibTorch's runs alternating.
//   bench_layers_vs_torch [threads]
#include <omp.h>
#include <torch/torch.h>

#include <cstdio>
#include <nnkit/nnkit.h>

#include "bench_util.h"
#include "parity/torch_twins.h"

namespace nn = nnkit::nn;

namespace {
torch::Tensor to_torch(const nnkit::Tensor& t) {
  nnkit::Tensor c = t.contiguous();
  return torch::from_blob(c.raw_data(), c.sizes().vec(), c.dtype() == nnkit::kInt64 ? torch::kInt64 : torch::kFloat32).clone();
}
}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : omp_get_max_threads();
  const int reps = 9;
  bench::set_threads(threads);
  bench::print_config(threads);

  {  // MLP 784-512-512-10, batch 128: forward, cross-entropy, backward, SGD step.
    nnkit::manual_seed(0);
    auto m = nn::make<nn::Sequential>(nn::make<nn::Linear>(784, 512), nn::make<nn::ReLU>(), nn::make<nn::Linear>(512, 512),
                                      nn::make<nn::ReLU>(), nn::make<nn::Linear>(512, 10));
    torch::nn::Sequential tm(torch::nn::Linear(784, 512), torch::nn::ReLU(), torch::nn::Linear(512, 512), torch::nn::ReLU(),
                             torch::nn::Linear(512, 10));
    parity::load_from_torch(*m, *tm);
    nnkit::Tensor x = nnkit::randn({128, 784}), y = nnkit::randint(0, 10, {128});
    torch::Tensor tx = to_torch(x), ty = to_torch(y);
    bench::check_same("MLP loss", nn::functional::cross_entropy(m(x), y),
                      torch::nn::functional::cross_entropy(tm->forward(tx), ty));
    nnkit::optim::SGD opt(m->parameters(), {.lr = 0.01, .momentum = 0.9});
    torch::optim::SGD topt(tm->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
    // The same gradient work on both sides: nnkit's zero_grad() drops the gradients (PyTorch 2's
    // set_to_none default); LibTorch's zero_grad() zeroes them in place in 1.13, so its
    // gradients are dropped by hand.
    auto torch_zero_grad = [&] {
      for (auto& p : tm->parameters()) p.mutable_grad().reset();
    };
    auto [a, b] = bench::median_ms_interleaved(
        [&] {
          opt.zero_grad();
          nn::functional::cross_entropy(m(x), y).backward();
          opt.step();
        },
        [&] {
          torch_zero_grad();
          torch::nn::functional::cross_entropy(tm->forward(tx), ty).backward();
          topt.step();
        },
        reps);
    std::printf("\n%d thread(s), median of %d, alternating\n\n| work | nnkit ms | LibTorch ms | nnkit/LibTorch |\n|---|---|---|---|\n",
                threads, reps);
    std::printf("| MLP 784-512-512-10 train step, batch 128 | %.2f | %.2f | %.2f |\n", a, b, a / b);
  }
  {  // 1x1 convolution 256 -> 64 channels, 8 x 28 x 28: forward + backward, then forward alone.
    nnkit::manual_seed(0);
    auto c = nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 256, .out_channels = 64, .kernel_size = 1, .bias = false});
    torch::nn::Conv2d tc(torch::nn::Conv2dOptions(256, 64, 1).bias(false));
    parity::load_from_torch(*c, *tc);
    nnkit::Tensor x = nnkit::randn({8, 256, 28, 28}, {.requires_grad = true});
    torch::Tensor tx = to_torch(x).requires_grad_(true);
    bench::check_same("1x1 conv forward", c(x), tc(tx));
    auto [a, b] = bench::median_ms_interleaved([&] { c(x).sum().backward(); }, [&] { tc(tx).sum().backward(); }, reps);
    std::printf("| 1x1 conv 256->64, 8x28x28, fwd+bwd | %.2f | %.2f | %.2f |\n", a, b, a / b);
    nnkit::NoGradGuard g;
    torch::NoGradGuard tg;
    std::tie(a, b) = bench::median_ms_interleaved([&] { c(x); }, [&] { tc(tx); }, reps);
    std::printf("| 1x1 conv 256->64, 8x28x28, forward | %.2f | %.2f | %.2f |\n", a, b, a / b);
  }
  return 0;
}
