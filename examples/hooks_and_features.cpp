// Acceptance example from shared/spec/hooks_and_features.cpp, built and run by the tests (ctest example_hooks_and_features).
// Target user experience: hooks, feature extraction and gradient inspection, with cleanup
// guaranteed by scope (C++'s answer to Python's `with`).
#include <nnkit/nnkit.h>

#include <iostream>

using nnkit::Tensor;
namespace nn = nnkit::nn;

int main() {
  nnkit::manual_seed(0);
  auto model = nn::make<nn::Sequential>(
      nn::make<nn::Linear>(10, 20), nn::make<nn::ReLU>(),
      nn::make<nn::Linear>(20, 20), nn::make<nn::ReLU>(),
      nn::make<nn::Linear>(20, 10));
  Tensor x = nnkit::randn({4, 10});

  // 1. Feature extraction: hooks live exactly as long as the scope; features are detached.
  nn::FeatureExtractor extractor(*model, {"1", "3"});  // an unknown name is an error here, not a silent no-op
  {
    auto active = extractor.capture();
    nnkit::NoGradGuard no_grad;
    Tensor out = model(x);
  }
  const Tensor& f1 = extractor.features().at("1");
  if (f1.requires_grad() || f1.grad_fn()) return 1;  // no graph retained

  // 2. Detach shares memory; clone does not. In-place changes after capture show through a detached view.
  Tensor a = nnkit::ones({3}, {.requires_grad = true}) * 2;
  Tensor view = a.detach();
  Tensor copy = a.detach().clone();
  {
    nnkit::NoGradGuard g;
    a += 10;
  }
  if (view[0].item<float>() != 12.f || copy[0].item<float>() != 2.f) return 2;
  nn::FeatureExtractor cloning(*model, {"1"}, nn::Capture::DetachClone);  // the safe policy for in-place models

  // 3. Backward hooks: gradient statistics per layer, through a full backward hook.
  nn::GradientInspector inspector(*model, {"0", "2", "4"});
  {
    auto active = inspector.capture();
    Tensor loss = model(x).pow(2).mean();
    loss.backward();
  }
  for (auto& [name, s] : inspector.stats())
    std::cout << name << ": mean=" << s.mean << " std=" << s.std << " max=" << s.max << " min=" << s.min << "\n";

  // 4. A hook that removes itself while the forward pass runs is safe; it fires once.
  int calls = 0;
  nn::HookHandle self_removing;
  self_removing = model->at(0).register_forward_hook(
      [&](nn::Module&, const nn::TensorList&, nn::TensorList&) { ++calls; self_removing.remove(); });
  model(x);
  model(x);
  if (calls != 1) return 3;

  // 5. A forward hook may replace the output; a pre-hook may replace the input.
  nn::ScopedHook doubled = model->at(4).register_forward_hook(
      [](nn::Module&, const nn::TensorList&, nn::TensorList& outputs) { outputs[0] = outputs[0] * 2; });
  Tensor y2 = model(x);
  return 0;
}
