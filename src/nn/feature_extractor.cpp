#include "nnkit/nn/feature_extractor.h"

#include <cmath>
#include <iostream>

#include "nnkit/autograd/grad_mode.h"
#include "nnkit/ops.h"

namespace nnkit::nn {

namespace {
std::vector<Module*> resolve(Module& model, const std::vector<std::string>& paths, const char* who) {
  NNKIT_CHECK(!paths.empty(), "[", who, "] no module paths given");
  std::vector<Module*> out;
  for (auto& p : paths) {
    try {
      out.push_back(&model.get_submodule(p));
    } catch (const Error& e) {
      throw Error(std::string("[") + who + "] unknown module path '" + p + "': " + e.what());
    }
  }
  return out;
}
}  // namespace

FeatureExtractor::FeatureExtractor(Module& model, std::vector<std::string> paths, Capture policy)
    : paths_(std::move(paths)), modules_(resolve(model, paths_, "FeatureExtractor")), policy_(policy) {}

FeatureExtractor::Scope FeatureExtractor::capture() {
  Scope scope;
  for (size_t i = 0; i < modules_.size(); ++i) {
    std::string key = paths_[i];
    scope.hooks_.emplace_back(modules_[i]->register_forward_hook([this, key](Module&, const TensorList&, TensorList& outputs) {
      if (outputs.empty() || !outputs[0].defined()) return;
      Tensor f;
      {
        NoGradGuard g;
        f = policy_ == Capture::DetachClone ? outputs[0].detach().clone() : outputs[0].detach();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      features_.insert_or_assign(key, f);
      versions_.insert_or_assign(key, f.version());
    }));
  }
  return scope;
}

const OrderedDict<Tensor>& FeatureExtractor::features() const {
  std::vector<std::string> modified;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (policy_ == Capture::Detach) {
      for (auto& [k, t] : features_) {
        uint32_t& v = versions_.at(k);
        if (t.version() != v) {
          modified.push_back(k);
          v = t.version();  // warn once per change
        }
      }
    }
  }
  // Outside the lock: a warning handler may look at the features again.
  for (const auto& k : modified)
    warn("[FeatureExtractor] feature '" + k +
         "' was modified in place after it was captured (an in-place layer or op reused its memory); "
         "its values are not what the module produced. Use nn::Capture::DetachClone.");
  return features_;
}

OrderedDict<Tensor> FeatureExtractor::snapshot() const {
  features();
  std::lock_guard<std::mutex> lock(mutex_);
  return features_;
}

void FeatureExtractor::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  features_.clear();
  versions_.clear();
}

GradientInspector::GradientInspector(Module& model, std::vector<std::string> paths, GradientInspectorOptions options)
    : paths_(std::move(paths)), modules_(resolve(model, paths_, "GradientInspector")), options_(options) {}

FeatureExtractor::Scope GradientInspector::capture() {
  FeatureExtractor::Scope scope;
  for (size_t i = 0; i < modules_.size(); ++i) {
    std::string key = paths_[i];
    scope.hooks_.emplace_back(modules_[i]->register_full_backward_hook(
        [this, key](Module&, TensorList&, const TensorList& grad_outputs) {
          if (grad_outputs.empty() || !grad_outputs[0].defined()) return;
          NoGradGuard g;
          Tensor a = grad_outputs[0].detach().abs().to(kFloat64);
          GradStats s;
          s.mean = a.mean().item<double>();
          s.std = a.numel() > 1 ? a.std().item<double>() : 0.0;
          s.max = a.max().item<double>();
          s.min = a.min().item<double>();
          s.vanishing = s.mean < options_.vanishing_below;
          s.exploding = s.max > options_.exploding_above || !std::isfinite(s.max);
          std::lock_guard<std::mutex> lock(mutex_);
          stats_.insert_or_assign(key, s);
        }));
  }
  return scope;
}

std::vector<std::string> GradientInspector::flagged() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (auto& [k, s] : stats_)
    if (s.vanishing || s.exploding) out.push_back(k);
  return out;
}

}  // namespace nnkit::nn
