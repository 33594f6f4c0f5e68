#pragma once
// Tools built on hooks: FeatureExtractor captures submodule outputs; GradientInspector
// gathers gradient statistics per module. Both hook only while a capture scope lives.
#include <mutex>
#include <string>
#include <vector>

#include "nnkit/nn/module.h"

namespace nnkit::nn {

enum class Capture {
  Detach,       // shares memory with the model's activation (cheap; in-place changes show)
  DetachClone,  // an independent copy (safe with in-place layers)
};

class FeatureExtractor {
 public:
  // Each path names a submodule ("layer1.0.conv1"); an unknown path is an error here.
  FeatureExtractor(Module& model, std::vector<std::string> paths, Capture policy = Capture::Detach);
  FeatureExtractor(const FeatureExtractor&) = delete;
  FeatureExtractor& operator=(const FeatureExtractor&) = delete;

  // Hooks are installed while the returned scope lives; features are replaced on each call.
  class [[nodiscard]] Scope {
   public:
    Scope(Scope&&) = default;
    Scope& operator=(Scope&&) = default;
    ~Scope() = default;

   private:
    friend class FeatureExtractor;
    friend class GradientInspector;
    Scope() = default;
    std::vector<ScopedHook> hooks_;
  };
  Scope capture();

  // The captured outputs by path (a module's first output). With Capture::Detach, a warning is
  // printed once per feature that was modified in place after it was captured.
  const OrderedDict<Tensor>& features() const;
  // A copy taken under the lock (use it while another thread runs the model).
  OrderedDict<Tensor> snapshot() const;
  void clear();

 private:
  std::vector<std::string> paths_;
  std::vector<Module*> modules_;
  Capture policy_;
  mutable std::mutex mutex_;
  OrderedDict<Tensor> features_;
  mutable OrderedDict<uint32_t> versions_;
};

struct GradStats {
  double mean = 0;  // of |grad|
  double std = 0;
  double max = 0;
  double min = 0;
  bool vanishing = false;
  bool exploding = false;
};

struct GradientInspectorOptions {
  double vanishing_below = 1e-7;  // mean |grad| below this is flagged
  double exploding_above = 1e3;   // max |grad| above this is flagged
};

// Statistics of the gradient w.r.t. each named module's output, from a full backward hook.
class GradientInspector {
 public:
  GradientInspector(Module& model, std::vector<std::string> paths, GradientInspectorOptions options = {});
  GradientInspector(const GradientInspector&) = delete;
  GradientInspector& operator=(const GradientInspector&) = delete;
  FeatureExtractor::Scope capture();
  const OrderedDict<GradStats>& stats() const { return stats_; }
  std::vector<std::string> flagged() const;

 private:
  std::vector<std::string> paths_;
  std::vector<Module*> modules_;
  GradientInspectorOptions options_;
  mutable std::mutex mutex_;
  OrderedDict<GradStats> stats_;
};

}  // namespace nnkit::nn
