// A user's program built against the installed nnkit (find_package(nnkit)): the public
// headers, the generated config.h and the library must all have been installed.
#include <nnkit/config.h>
#include <nnkit/nnkit.h>

#include <cstdio>

namespace nn = nnkit::nn;

int main() {
  nnkit::Tensor t = nnkit::ones({2, 3});
  if (t.sum().item<float>() != 6.f) {
    std::fprintf(stderr, "consumer: ones({2, 3}).sum() != 6\n");
    return 1;
  }
  nnkit::manual_seed(0);
  auto model = nn::make<nn::Sequential>(nn::make<nn::Linear>(4, 8), nn::make<nn::ReLU>(),
                                        nn::make<nn::Linear>(8, 2));
  nnkit::Tensor y = model(nnkit::randn({3, 4}));
  y.sum().backward();
  if (y.sizes() != std::vector<int64_t>{3, 2} || !model->parameters()[0].grad().defined()) {
    std::fprintf(stderr, "consumer: Sequential forward/backward gave the wrong result\n");
    return 1;
  }
  std::printf("consumer: nnkit %s (CUDA backend: %d) works\n", NNKIT_VERSION, NNKIT_HAS_CUDA);
  return 0;
}
