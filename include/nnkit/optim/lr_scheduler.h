#pragma once
// Learning-rate schedulers (torch.optim.lr_scheduler): each one sets its optimizer's group
// learning rates on step(); call step() once per epoch (or per iteration for OneCycleLR),
// after optimizer.step(). The values equal PyTorch's closed forms.
#include <memory>
#include <vector>

#include "nnkit/optim/optimizer.h"

namespace nnkit::optim {

class LRScheduler {
 public:
  explicit LRScheduler(Optimizer& optimizer);
  virtual ~LRScheduler() = default;
  // Advances one epoch and sets the learning rates.
  void step();
  // The learning rates last set, one per group.
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  Optimizer& optimizer() { return optimizer_; }

  // The learning rate of a group at an epoch (0 = the start).
  virtual double lr_at(int64_t epoch, size_t group) const = 0;

 protected:
  void apply();  // sets the rates for last_epoch_
  virtual void on_apply(int64_t epoch) { (void)epoch; }  // other hyper-parameters (momentum)
  Optimizer& optimizer_;
  std::vector<double> base_lrs_;

 private:
  friend class SequentialLR;
  int64_t last_epoch_ = 0;
  std::vector<double> last_lr_;
};

// lr = base * gamma^(epoch / step_size)
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  double lr_at(int64_t epoch, size_t group) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

// lr = base * gamma^(number of milestones <= epoch)
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma = 0.1);
  double lr_at(int64_t epoch, size_t group) const override;

 private:
  std::vector<int64_t> milestones_;
  double gamma_;
};

// lr = eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0);
  double lr_at(int64_t epoch, size_t group) const override;

 private:
  int64_t t_max_;
  double eta_min_;
};

// lr = base * (start + (end - start) * min(epoch, total_iters) / total_iters)
class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0, int64_t total_iters = 5);
  double lr_at(int64_t epoch, size_t group) const override;

 private:
  double start_, end_;
  int64_t total_;
};

// The 1cycle policy (Smith & Topin), stepped once per batch: warm up from max_lr/div_factor to
// max_lr over pct_start of total_steps, then anneal (cosine or linear) to
// max_lr/(div_factor*final_div_factor). With cycle_momentum (PyTorch's default) the momentum
// (SGD, RMSprop) or beta1 (Adam, AdamW) moves the other way, between max_momentum and
// base_momentum.
struct OneCycleOptions {
  double max_lr = 0.1;
  std::vector<double> max_lrs = {};  // one per parameter group; empty: max_lr for every group
  int64_t total_steps = 100;
  double pct_start = 0.3;
  bool cos_anneal = true;
  double div_factor = 25;
  double final_div_factor = 1e4;
  bool three_phase = false;
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
};
class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, const OneCycleOptions& options);
  double lr_at(int64_t epoch, size_t group) const override;
  double momentum_at(int64_t step) const;

 protected:
  void on_apply(int64_t step) override;

 private:
  double value_at(int64_t step, double initial, double peak, double final_value) const;
  OneCycleOptions o_;
};

// Runs schedulers one after another: schedulers[i] from milestones[i-1] on (PyTorch's
// SequentialLR), e.g. LinearLR warmup then CosineAnnealingLR. Each one counts its own epochs
// from its start. The schedulers must all drive `optimizer`.
class SequentialLR : public LRScheduler {
 public:
  SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
               std::vector<int64_t> milestones);
  double lr_at(int64_t epoch, size_t group) const override;

 private:
  std::vector<std::shared_ptr<LRScheduler>> schedulers_;
  std::vector<int64_t> milestones_;
};

}  // namespace nnkit::optim
