#pragma once
// The optimizer base: parameter groups with their own options, zero_grad, and state dicts
// that save with nnkit::save like a module's. Concrete optimizers (SGD, Adam, AdamW, RMSprop)
// follow PyTorch's update rules exactly (torch/optim/*.py, PyTorch 1.13), step for step.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nnkit/core/tensor.h"
#include "nnkit/serialize/state_dict.h"

namespace nnkit::optim {

// Parameters with their own options; `options` unset means the optimizer's defaults.
template <typename Options>
struct ParamGroup {
  TensorList params;
  std::optional<Options> options = std::nullopt;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient (under no-grad).
  virtual void step() = 0;
  // Clears the gradients of every parameter: undefined (the default, as in PyTorch 2) or zeros.
  void zero_grad(bool set_to_none = true);

  size_t num_param_groups() const { return groups_.size(); }
  const TensorList& params(size_t group) const { return groups_.at(group); }
  TensorList all_params() const;
  // The learning rate of a group: what schedulers read and set.
  virtual double lr(size_t group = 0) const = 0;
  virtual void set_lr(double lr, size_t group) = 0;
  void set_lr(double lr) {
    for (size_t g = 0; g < num_param_groups(); ++g) set_lr(lr, g);
  }
  // The momentum of a group (SGD and RMSprop: momentum; Adam and AdamW: beta1), for schedulers
  // that cycle it; nullopt for optimizers without one.
  virtual std::optional<double> momentum(size_t /*group*/ = 0) const { return std::nullopt; }
  virtual void set_momentum(double value, size_t group) { (void)value, (void)group; }

  // PyTorch's layout, flattened into tensor names: "state.<i>.<name>" for each parameter's
  // state (i counts parameters across groups, in order) and "param_groups.<g>.<option>" for
  // the options (0-dim float64). Save it with nnkit::save next to the model's.
  StateDict state_dict() const;
  // Validates everything first (parameter count, state shapes and dtypes, known options);
  // on any mismatch throws an nnkit::Error listing the problems and changes nothing.
  void load_state_dict(const StateDict& state);

  const std::string& name() const { return name_; }

 protected:
  Optimizer(std::string name, std::vector<TensorList> groups);
  // Per-parameter state tensors by name (created lazily by the optimizers).
  std::map<std::string, Tensor>& state(size_t param_index) { return state_[param_index]; }
  // Options of a group as named numbers, for state dicts.
  virtual std::vector<std::pair<std::string, double>> group_options(size_t group) const = 0;
  virtual void set_group_options(size_t group, const std::map<std::string, double>& values) = 0;
  // Index of the first parameter of a group in the flat numbering.
  size_t first_index(size_t group) const;

  std::vector<TensorList> groups_;

 private:
  std::string name_;
  std::vector<std::map<std::string, Tensor>> state_;
};

// Adam (Kingma & Ba) with PyTorch's rule; AdamW applies weight decay to the parameter
// directly (decoupled), Adam adds it to the gradient.
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool amsgrad = false;
  bool maximize = false;
};
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
  bool maximize = false;
};
struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0;
  double momentum = 0;
  bool centered = false;
  bool maximize = false;
};

namespace detail {
// Groups with their options resolved; the common machinery of the concrete optimizers.
template <typename Options>
class Impl : public Optimizer {
 public:
  double lr(size_t group = 0) const override { return options_.at(group).lr; }
  void set_lr(double lr, size_t group) override { options_.at(group).lr = lr; }
  using Optimizer::set_lr;
  Options& options(size_t group = 0) { return options_.at(group); }
  const Options& options(size_t group = 0) const { return options_.at(group); }

 protected:
  Impl(std::string name, std::vector<ParamGroup<Options>> groups, const Options& defaults)
      : Optimizer(std::move(name), split(groups)) {
    for (auto& g : groups) options_.push_back(g.options.value_or(defaults));
  }
  static std::vector<TensorList> split(const std::vector<ParamGroup<Options>>& groups) {
    std::vector<TensorList> out;
    for (auto& g : groups) out.push_back(g.params);
    return out;
  }
  std::vector<Options> options_;
};
}  // namespace detail

class Adam : public detail::Impl<AdamOptions> {
 public:
  Adam(TensorList params, const AdamOptions& options = {})
      : Adam(std::vector<ParamGroup<AdamOptions>>{{std::move(params), std::nullopt}}, options) {}
  Adam(std::vector<ParamGroup<AdamOptions>> groups, const AdamOptions& defaults = {});
  void step() override;
  std::optional<double> momentum(size_t g = 0) const override { return options_.at(g).beta1; }
  void set_momentum(double v, size_t g) override { options_.at(g).beta1 = v; }

 protected:
  std::vector<std::pair<std::string, double>> group_options(size_t g) const override;
  void set_group_options(size_t g, const std::map<std::string, double>& v) override;
};

class AdamW : public detail::Impl<AdamWOptions> {
 public:
  AdamW(TensorList params, const AdamWOptions& options = {})
      : AdamW(std::vector<ParamGroup<AdamWOptions>>{{std::move(params), std::nullopt}}, options) {}
  AdamW(std::vector<ParamGroup<AdamWOptions>> groups, const AdamWOptions& defaults = {});
  void step() override;
  std::optional<double> momentum(size_t g = 0) const override { return options_.at(g).beta1; }
  void set_momentum(double v, size_t g) override { options_.at(g).beta1 = v; }

 protected:
  std::vector<std::pair<std::string, double>> group_options(size_t g) const override;
  void set_group_options(size_t g, const std::map<std::string, double>& v) override;
};

class RMSprop : public detail::Impl<RMSpropOptions> {
 public:
  RMSprop(TensorList params, const RMSpropOptions& options = {})
      : RMSprop(std::vector<ParamGroup<RMSpropOptions>>{{std::move(params), std::nullopt}}, options) {}
  RMSprop(std::vector<ParamGroup<RMSpropOptions>> groups, const RMSpropOptions& defaults = {});
  void step() override;
  std::optional<double> momentum(size_t g = 0) const override { return options_.at(g).momentum; }
  void set_momentum(double v, size_t g) override { options_.at(g).momentum = v; }

 protected:
  std::vector<std::pair<std::string, double>> group_options(size_t g) const override;
  void set_group_options(size_t g, const std::map<std::string, double>& v) override;
};

// Gradient clipping (torch.nn.utils): scales all gradients together so that their total
// norm (of the given order; INFINITY for the max norm) is at most max_norm, and returns the
// total norm before clipping. A non-finite total norm is an nnkit::Error when
// error_if_nonfinite is set.
double clip_grad_norm_(const TensorList& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
// Clamps every gradient element into [-clip_value, clip_value].
void clip_grad_value_(const TensorList& params, double clip_value);

}  // namespace nnkit::optim
