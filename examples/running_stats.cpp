// BatchNorm's running statistics: buffers (not parameters) updated in train mode only, with
// PyTorch's rule running = (1 - momentum) * running + momentum * batch_stat (the variance
// unbiased), or a cumulative average when momentum is unset; num_batches_tracked counts the
// steps; eval mode normalizes with the running values. Checked against the rule by hand.
#include <nnkit/nnkit.h>

#include <cmath>
#include <cstdio>

using nnkit::Tensor;
namespace nn = nnkit::nn;

int main() {
  nnkit::manual_seed(0);
  auto bn = nn::make<nn::BatchNorm1d>(3);
  auto cumulative = nn::make<nn::BatchNorm1d>(nn::BatchNorm1d::Options{.num_features = 3, .momentum = std::nullopt});
  Tensor mean = nnkit::zeros({3}), var = nnkit::ones({3});
  Tensor sum_mean = nnkit::zeros({3}), sum_var = nnkit::zeros({3});
  std::printf("| step | running_mean[0] | expected | cumulative mean[0] | expected |\n|---|---|---|---|---|\n");
  for (int step = 1; step <= 5; ++step) {
    Tensor x = nnkit::randn({16, 3}) * 2.0 + double(step);
    bn(x);
    cumulative(x);
    Tensor batch_mean = x.mean(0), batch_var = x.var(0, 1);  // unbiased, as PyTorch uses
    mean = mean * 0.9 + batch_mean * 0.1;
    var = var * 0.9 + batch_var * 0.1;
    sum_mean = sum_mean + batch_mean;
    sum_var = sum_var + batch_var;
    Tensor rm = bn->state_dict().at("running_mean"), cm = cumulative->state_dict().at("running_mean");
    std::printf("| %d | %.5f | %.5f | %.5f | %.5f |\n", step, rm[0].item<float>(), mean[0].item<float>(),
                cm[0].item<float>(), (sum_mean[0] / double(step)).item<float>());
    if (!nnkit::allclose(rm, mean, 1e-5, 1e-6) || !nnkit::allclose(bn->state_dict().at("running_var"), var, 1e-5, 1e-6))
      return 1;
    if (!nnkit::allclose(cm, sum_mean / double(step), 1e-5, 1e-6)) return 2;
  }
  if (bn->state_dict().at("num_batches_tracked").item<int64_t>() != 5) return 3;
  // In eval mode the running statistics are used, and not updated.
  bn->eval();
  Tensor x = nnkit::randn({4, 3});
  Tensor y = bn(x);
  Tensor expected = (x - mean) / (var + 1e-5).sqrt();  // weight 1, bias 0
  if (!nnkit::allclose(y, expected, 1e-4, 1e-5)) return 4;
  if (!nnkit::allclose(bn->state_dict().at("running_mean"), mean, 1e-5, 1e-6)) return 5;
  std::printf("buffers: %zu (running_mean, running_var, num_batches_tracked); parameters: %zu\n",
              bn->buffers().size(), bn->parameters().size());
  std::printf("running_stats: ok\n");
  return 0;
}
