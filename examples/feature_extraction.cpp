// Feature extraction with nn::FeatureExtractor: capture intermediate activations of a CNN by
// module path, only while a scope lives, detached (no graph kept) or cloned (safe with
// in-place layers). Prints each feature's shape and statistics.
#include <nnkit/nnkit.h>

#include <iostream>

using nnkit::Tensor;
namespace nn = nnkit::nn;

int main() {
  nnkit::manual_seed(0);
  auto cnn = nn::make<nn::Sequential>(std::vector<std::pair<std::string, nn::Ptr<>>>{
      {"stem", nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 3, .out_channels = 16, .kernel_size = 3, .padding = 1})},
      {"bn", nn::make<nn::BatchNorm2d>(16)},
      {"act", nn::make<nn::ReLU>()},
      {"pool", nn::make<nn::MaxPool2d>(2)},
      {"head", nn::make<nn::Sequential>(nn::make<nn::AdaptiveAvgPool2d>(1), nn::make<nn::Flatten>(), nn::make<nn::Linear>(16, 10))}});
  cnn->eval();

  // Paths are checked now: a typo is an error here, not an empty result later.
  try {
    nn::FeatureExtractor typo(*cnn, {"stem", "haed.2"});
    return 1;
  } catch (const nnkit::Error& e) {
    std::cout << "typo caught: " << e.what() << "\n";
  }

  nn::FeatureExtractor extractor(*cnn, {"stem", "act", "head.2"}, nn::Capture::DetachClone);
  Tensor images = nnkit::randn({4, 3, 32, 32});
  {
    auto capturing = extractor.capture();  // hooks live exactly as long as this scope
    nnkit::NoGradGuard no_grad;
    cnn(images);
  }
  for (auto& [path, feature] : extractor.features()) {
    std::cout << path << ": " << feature.sizes() << " mean " << feature.mean().item<float>() << " max "
              << feature.max().item<float>() << "\n";
    if (feature.requires_grad()) return 2;  // detached: no graph is kept alive
  }
  if (extractor.features().at("head.2").sizes() != std::vector<int64_t>{4, 10}) return 3;
  if (extractor.features().at("act").min().item<float>() < 0) return 4;  // after ReLU
  // Outside the scope nothing is captured any more.
  extractor.clear();
  cnn(images);
  if (extractor.features().size() != 0) return 5;
  std::cout << "feature_extraction: ok\n";
  return 0;
}
