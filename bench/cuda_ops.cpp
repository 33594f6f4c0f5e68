// nnkit on a CUDA device: the ResNet basic block of bench/resnet_block_vs_torch.cpp (64 -> 64
// channels, 56x56, batch 8, train fwd+bwd and eval forward), a large float32 matmul (GFLOP/s
// with and without TF32) and the cost of a tiny op (launch + allocation), each next to the
// same work on the CPU in the same run. Debian's LibTorch has no CUDA, so the comparison here
// is nnkit CUDA vs nnkit CPU. Without a GPU it says so and exits 0.
//   bench_cuda_ops [batch] [reps]
#include <cstdio>
#include <cstdlib>
#include <nnkit/nnkit.h>

#include "timing.h"

namespace nn = nnkit::nn;
using nnkit::Device;
using nnkit::Tensor;

namespace {

// Median wall time (ms) of f over `reps` runs after two warm-ups (the first CUDA runs search
// cuDNN's algorithms), with the device drained after each call.
template <typename F>
double timed(Device d, F&& f, int reps) {
  return bench::median_ms([&] {
    f();
    if (d.is_cuda()) nnkit::cuda::synchronize();
  }, reps);
}
}  // namespace

int main(int argc, char** argv) {
  if (!nnkit::cuda::is_available()) {
    std::printf("bench_cuda_ops: no CUDA device on this machine (or a build without CUDA); nothing to measure\n");
    return 0;
  }
  int64_t N = argc > 1 ? std::atoll(argv[1]) : 8, C = 64, H = 56;
  int reps = argc > 2 ? std::atoi(argv[2]) : 20;
  nnkit::manual_seed(0);
  const Device gpu = Device::cuda(0), cpu = Device::cpu();

  std::printf("| work | nnkit CPU ms | nnkit CUDA ms | CPU/CUDA |\n|---|---|---|---|\n");
  auto row = [&](const char* what, double c, double g) { std::printf("| %s | %.3f | %.3f | %.1f |\n", what, c, g, c / g); };

  // ResNet block, train and eval.
  double ms[2][2];
  for (int dev = 0; dev < 2; ++dev) {
    Device d = dev ? gpu : cpu;
    auto block = nn::make<nnkit::models::BasicBlock>(C, C);  // the project's ResNet block
    block->to(d);
    Tensor x = nnkit::randn({N, C, H, H}, {.device = d, .requires_grad = true});
    block->train();
    ms[dev][0] = timed(d, [&] {
      block->zero_grad();
      x.mutable_grad() = Tensor();
      block->forward(x).sum().backward();
    }, dev ? reps : 3);
    block->eval();
    ms[dev][1] = timed(d, [&] {
      nnkit::NoGradGuard g;
      (*block)(x);
    }, dev ? reps : 3);
  }
  row("ResNet block train fwd+bwd", ms[0][0], ms[1][0]);
  row("ResNet block eval forward", ms[0][1], ms[1][1]);

  // Large matmul, FP32 and TF32.
  const int64_t M = 4096;
  Tensor a = nnkit::randn({M, M}, {.device = gpu}), b = nnkit::randn({M, M}, {.device = gpu});
  double flops = 2.0 * double(M) * double(M) * double(M);
  double fp32 = timed(gpu, [&] { nnkit::matmul(a, b); }, reps);
  nnkit::cuda::set_allow_tf32(true);
  double tf32 = timed(gpu, [&] { nnkit::matmul(a, b); }, reps);
  nnkit::cuda::set_allow_tf32(false);
  std::printf("\nmatmul %lldx%lld float32: %.0f GFLOP/s (FP32), %.0f GFLOP/s (TF32 allowed)\n", (long long)M, (long long)M,
              flops / fp32 / 1e6, flops / tf32 / 1e6);

  // A tiny op: per-op cost on the device (kernel launch, caching allocator) vs the CPU.
  Tensor tc = nnkit::randn({16}), tg = tc.to(gpu);
  auto per_op_us = [&](Device d, const Tensor& t) {
    const int n = 10000;
    return timed(d, [&] {
      for (int i = 0; i < n; ++i) (void)(t + t);
    }, 5) * 1000.0 / n;
  };
  std::printf("tiny add (16 elements): CPU %.2f us, CUDA %.2f us per op (asynchronous launches)\n", per_op_us(cpu, tc),
              per_op_us(gpu, tg));
  auto st = nnkit::cuda::memory_stats(0);
  std::printf("CUDA memory: allocated %.1f MiB, reserved %.1f MiB, peak %.1f MiB, %lld cudaMalloc calls for %lld allocations\n",
              double(st.allocated) / (1 << 20), double(st.reserved) / (1 << 20), double(st.peak_allocated) / (1 << 20),
              (long long)st.num_device_allocs, (long long)st.num_allocs);
  return 0;
}
