// The cost of calling a module: forward() called directly, the module called with no hooks,
// with one no-op forward hook, and LibTorch's module call, side by side in one run.
// Two modules: a pass-through (the call machinery alone) and Linear(16, 16) (a real layer).
// Grad mode off for the pass-through rows (pure dispatch), on for the Linear rows.
// Each number: nanoseconds per call, median of 9 timed batches after a warm-up batch; each nnkit
// column's batches alternate with LibTorch's (the LibTorch column is the median of all three).
#include <omp.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <nnkit/nnkit.h>
#include <utility>

#include "bench_util.h"
#include "parity/torch_twins.h"
#include <vector>

namespace nn = nnkit::nn;

namespace {
// nnkit's forward(), call and hooked call, each alternating with LibTorch's call.
template <typename A, typename B, typename C, typename T>
std::array<double, 4> measure(A&& direct, B&& call, C&& hooked, T&& torch_call, int inner) {
  auto [d, t1] = bench::ns_per_call_interleaved(direct, torch_call, inner, 9);
  auto [c, t2] = bench::ns_per_call_interleaved(call, torch_call, inner, 9);
  auto [h, t3] = bench::ns_per_call_interleaved(hooked, torch_call, inner, 9);
  return {d, c, h, bench::median({t1, t2, t3})};
}

// nnkit: a module whose forward returns its input (a handle copy).
class PassThrough : public nn::Module {
 public:
  nnkit::Tensor forward(const nnkit::Tensor& x) override { return x; }
};

// LibTorch: the same.
struct TorchPassThroughImpl : torch::nn::Module {
  torch::Tensor forward(const torch::Tensor& x) { return x; }
};
TORCH_MODULE(TorchPassThrough);
}  // namespace

int main() {
  bench::set_threads(1);
  bench::print_config(1);
  const int N = 200000;

  std::printf("Module call overhead, 1 thread, ns per call (median of 9 batches of %d calls)\n\n", N);
  std::printf("| module | nnkit forward() | nnkit call, no hooks | nnkit call, 1 hook | LibTorch call | "
              "nnkit unhooked - forward() | nnkit unhooked / LibTorch |\n|---|---|---|---|---|---|---|\n");

  auto row = [](const char* name, double direct, double call, double hooked, double torch_call) {
    std::printf("| %s | %.0f | %.0f | %.0f | %.0f | %+.0f | %.2f |\n", name, direct, call, hooked, torch_call,
                call - direct, call / torch_call);
  };

  {
    nnkit::NoGradGuard no_grad;
    torch::NoGradGuard torch_no_grad;
    auto m = nn::make<PassThrough>();
    auto hooked = nn::make<PassThrough>();
    nn::ScopedHook h = hooked->register_forward_hook([](nn::Module&, const nn::TensorList&, nn::TensorList&) {});
    TorchPassThrough tm;
    nnkit::Tensor x = nnkit::randn({16});
    torch::Tensor tx = torch::randn({16});
    auto [direct, call, hook, th] = measure([&] { nnkit::Tensor y = m->forward(x); }, [&] { nnkit::Tensor y = m(x); },
                                            [&] { nnkit::Tensor y = hooked(x); }, [&] { torch::Tensor y = tm(tx); }, N);
    row("pass-through, no grad", direct, call, hook, th);
  }
  {
    nnkit::manual_seed(0);
    auto m = nn::make<nn::Linear>(16, 16);
    auto hooked = nn::make<nn::Linear>(16, 16);
    nn::ScopedHook h = hooked->register_forward_hook([](nn::Module&, const nn::TensorList&, nn::TensorList&) {});
    torch::nn::Linear tm(16, 16);
    nnkit::Tensor x = nnkit::randn({4, 16});
    torch::Tensor tx = torch::randn({4, 16});
    parity::load_from_torch(*m, *tm);
    parity::load_from_torch(*hooked, *tm);
    bench::check_same("Linear(16, 16)", m(x), tm(torch::from_blob(x.data_ptr<float>(), {4, 16}).clone()));
    tx = torch::from_blob(x.data_ptr<float>(), {4, 16}).clone();
    auto [direct, call, hook, th] = measure([&] { nnkit::Tensor y = m->forward(x); }, [&] { nnkit::Tensor y = m(x); },
                                            [&] { nnkit::Tensor y = hooked(x); }, [&] { torch::Tensor y = tm(tx); }, N / 10);
    row("Linear(16, 16), 4 rows, grad on", direct, call, hook, th);
  }
  return 0;
}
