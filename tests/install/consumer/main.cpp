// A user's project: links the installed nnkit through find_package(nnkit).
#include <nnkit/nnkit.h>

namespace nn = nnkit::nn;

int main() {
  nnkit::manual_seed(0);
  auto model = nn::make<nn::Sequential>(nn::make<nn::Linear>(4, 8), nn::make<nn::ReLU>(), nn::make<nn::Linear>(8, 2));
  nnkit::Tensor y = model(nnkit::randn({3, 4}));
  y.sum().backward();
  bool ok = y.sizes() == std::vector<int64_t>{3, 2} && model->parameters()[0].grad().defined();
  return ok && nnkit::ones({2, 3}).sum().item<float>() == 6.f ? 0 : 1;
}
