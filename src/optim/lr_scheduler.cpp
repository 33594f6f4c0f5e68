// Learning-rate schedulers: PyTorch's closed forms (torch/optim/lr_scheduler.py,
// _get_closed_form_lr and OneCycleLR.get_lr).
#include "nnkit/optim/lr_scheduler.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "nnkit/core/error.h"

namespace nnkit::optim {

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {
  for (size_t g = 0; g < optimizer.num_param_groups(); ++g) base_lrs_.push_back(optimizer.lr(g));
  last_lr_ = base_lrs_;
}

void LRScheduler::apply() {
  on_apply(last_epoch_);
  last_lr_.clear();
  for (size_t g = 0; g < base_lrs_.size(); ++g) {
    double lr = lr_at(last_epoch_, g);
    optimizer_.set_lr(lr, g);
    last_lr_.push_back(lr);
  }
}

void LRScheduler::step() {
  ++last_epoch_;
  apply();
}

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  NNKIT_CHECK(step_size > 0, "[StepLR] step_size must be positive, got ", step_size);
  apply();
}
double StepLR::lr_at(int64_t epoch, size_t g) const {
  return base_lrs_[g] * std::pow(gamma_, double(epoch / step_size_));
}

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma)
    : LRScheduler(optimizer), milestones_(std::move(milestones)), gamma_(gamma) {
  NNKIT_CHECK(std::is_sorted(milestones_.begin(), milestones_.end()), "[MultiStepLR] milestones must be increasing");
  apply();
}
double MultiStepLR::lr_at(int64_t epoch, size_t g) const {
  auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), epoch) - milestones_.begin();
  return base_lrs_[g] * std::pow(gamma_, double(passed));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer), t_max_(T_max), eta_min_(eta_min) {
  NNKIT_CHECK(T_max > 0, "[CosineAnnealingLR] T_max must be positive, got ", T_max);
  apply();
}
double CosineAnnealingLR::lr_at(int64_t epoch, size_t g) const {
  return eta_min_ + (base_lrs_[g] - eta_min_) * (1 + std::cos(std::numbers::pi * double(epoch) / double(t_max_))) / 2;
}

LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor, int64_t total_iters)
    : LRScheduler(optimizer), start_(start_factor), end_(end_factor), total_(total_iters) {
  NNKIT_CHECK(start_factor > 0 && start_factor <= 1, "[LinearLR] start_factor must be in (0, 1], got ", start_factor);
  NNKIT_CHECK(end_factor >= 0 && end_factor <= 1, "[LinearLR] end_factor must be in [0, 1], got ", end_factor);
  NNKIT_CHECK(total_iters > 0, "[LinearLR] total_iters must be positive, got ", total_iters);
  apply();
}
double LinearLR::lr_at(int64_t epoch, size_t g) const {
  return base_lrs_[g] * (start_ + (end_ - start_) * double(std::min(total_, epoch)) / double(total_));
}

OneCycleLR::OneCycleLR(Optimizer& optimizer, const OneCycleOptions& o) : LRScheduler(optimizer), o_(o) {
  NNKIT_CHECK(o.total_steps > 0, "[OneCycleLR] total_steps must be positive, got ", o.total_steps);
  NNKIT_CHECK(o.pct_start >= 0 && o.pct_start <= 1, "[OneCycleLR] pct_start must be in [0, 1], got ", o.pct_start);
  NNKIT_CHECK(o.max_lrs.empty() || o.max_lrs.size() == optimizer.num_param_groups(), "[OneCycleLR] max_lrs has ",
              o.max_lrs.size(), " values for ", optimizer.num_param_groups(), " parameter groups");
  NNKIT_CHECK(!o.cycle_momentum || optimizer.momentum(0).has_value(), "[OneCycleLR] ", optimizer.name(),
              " has no momentum to cycle; pass .cycle_momentum = false");
  apply();
}

// PyTorch's phases: (end_step, start, end) per phase, annealed by cosine or linearly.
double OneCycleLR::value_at(int64_t step, double initial, double peak, double final_value) const {
  NNKIT_CHECK(step <= o_.total_steps, "[OneCycleLR] stepped ", step, " times, but total_steps is ", o_.total_steps);
  auto anneal = [&](double start, double end, double pct) {
    if (o_.cos_anneal) return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1);
    return (end - start) * pct + start;
  };
  struct Phase {
    double end_step, start, end;
  };
  std::vector<Phase> phases;
  const double n = double(o_.total_steps);
  if (o_.three_phase) {
    phases = {{o_.pct_start * n - 1, initial, peak}, {2 * o_.pct_start * n - 2, peak, initial}, {n - 1, initial, final_value}};
  } else {
    phases = {{o_.pct_start * n - 1, initial, peak}, {n - 1, peak, final_value}};
  }
  double start_step = 0;
  for (size_t i = 0; i < phases.size(); ++i) {
    const double end_step = phases[i].end_step;
    if (double(step) <= end_step || i == phases.size() - 1)
      return anneal(phases[i].start, phases[i].end, (double(step) - start_step) / (end_step - start_step));
    start_step = end_step;
  }
  return initial;
}

double OneCycleLR::lr_at(int64_t step, size_t group) const {
  const double max_lr = o_.max_lrs.empty() ? o_.max_lr : o_.max_lrs.at(group);
  const double initial = max_lr / o_.div_factor;
  return value_at(step, initial, max_lr, initial / o_.final_div_factor);
}

double OneCycleLR::momentum_at(int64_t step) const {
  // Momentum moves opposite to the learning rate: max -> base -> max (three phases: max ->
  // base -> max -> max).
  if (o_.three_phase) return value_at(step, o_.max_momentum, o_.base_momentum, o_.max_momentum);
  return value_at(step, o_.max_momentum, o_.base_momentum, o_.max_momentum);
}

void OneCycleLR::on_apply(int64_t step) {
  if (!o_.cycle_momentum) return;
  const double m = momentum_at(step);
  for (size_t g = 0; g < optimizer_.num_param_groups(); ++g) optimizer_.set_momentum(m, g);
}

SequentialLR::SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
                           std::vector<int64_t> milestones)
    : LRScheduler(optimizer), schedulers_(std::move(schedulers)), milestones_(std::move(milestones)) {
  NNKIT_CHECK(!schedulers_.empty(), "[SequentialLR] needs at least one scheduler");
  NNKIT_CHECK(milestones_.size() + 1 == schedulers_.size(), "[SequentialLR] expects ", schedulers_.size() - 1,
              " milestones for ", schedulers_.size(), " schedulers, got ", milestones_.size());
  for (auto& s : schedulers_)
    NNKIT_CHECK(s && &s->optimizer() == &optimizer, "[SequentialLR] every scheduler must drive the same optimizer");
  // The schedulers were constructed one after another, each setting the rates: the base
  // rates are those of the first one's start.
  base_lrs_ = schedulers_.front()->base_lrs_;
  for (auto& s : schedulers_) s->base_lrs_ = base_lrs_;
  apply();
}
double SequentialLR::lr_at(int64_t epoch, size_t g) const {
  size_t idx = std::upper_bound(milestones_.begin(), milestones_.end(), epoch) - milestones_.begin();
  const int64_t start = idx == 0 ? 0 : milestones_[idx - 1];
  return schedulers_[idx]->lr_at(epoch - start, g);
}

}  // namespace nnkit::optim
