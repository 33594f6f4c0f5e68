// The optimizers' update rules, each following PyTorch 1.13's single-tensor implementation
// (torch/optim/{sgd,adam,adamw,rmsprop}.py) operation by operation, so results agree step for
// step (tests/parity compares 25 steps with LibTorch's optimizers).
#include <cmath>
#include <functional>

#include "nnkit/autograd/grad_mode.h"
#include "nnkit/ops.h"
#include "nnkit/optim/sgd.h"

namespace nnkit::optim {

namespace {
void check_common(const char* name, double lr, double weight_decay) {
  NNKIT_CHECK(lr >= 0, "[", name, "] invalid learning rate: ", lr);
  NNKIT_CHECK(weight_decay >= 0, "[", name, "] invalid weight_decay value: ", weight_decay);
}
void check_betas(const char* name, double b1, double b2, double eps) {
  NNKIT_CHECK(eps >= 0, "[", name, "] invalid epsilon value: ", eps);
  NNKIT_CHECK(b1 >= 0 && b1 < 1, "[", name, "] invalid beta parameter at index 0: ", b1);
  NNKIT_CHECK(b2 >= 0 && b2 < 1, "[", name, "] invalid beta parameter at index 1: ", b2);
}
// The named state tensor of a parameter, zero-initialized like the parameter on first use.
Tensor& state_like(std::map<std::string, Tensor>& st, const std::string& key, const Tensor& p) {
  Tensor& t = st[key];
  if (!t.defined()) t = zeros_like(p);
  return t;
}
// The step counter (PyTorch keeps it as a float tensor per parameter since 1.12).
double next_step(std::map<std::string, Tensor>& st) {
  Tensor& s = st["step"];
  if (!s.defined()) s = zeros({}, {.dtype = kFloat64});
  s.add_(1.0);
  return s.item<double>();
}
}  // namespace

// ---- SGD ----
SGD::SGD(std::vector<ParamGroup<SGDOptions>> groups, const SGDOptions& defaults)
    : Impl("SGD", std::move(groups), defaults) {
  for (const SGDOptions& o : options_) {
    check_common("SGD", o.lr, o.weight_decay);
    NNKIT_CHECK(o.momentum >= 0, "[SGD] invalid momentum value: ", o.momentum);
    NNKIT_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
                "[SGD] nesterov momentum requires a momentum and zero dampening");
  }
}

void SGD::step() {
  NoGradGuard no_grad;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const SGDOptions& o = options_[gi];
    for (size_t j = 0; j < groups_[gi].size(); ++j) {
      Tensor& p = groups_[gi][j];
      if (!p.grad().defined()) continue;
      Tensor g = o.maximize ? -p.grad() : p.grad();
      if (o.weight_decay != 0) g = g.add(p, o.weight_decay);
      if (o.momentum != 0) {
        Tensor& b = state(first_index(gi) + j)["momentum_buffer"];
        if (!b.defined()) {
          b = g.clone();
        } else {
          b.mul_(o.momentum).add_(g, 1 - o.dampening);
        }
        g = o.nesterov ? g.add(b, o.momentum) : b;
      }
      p.add_(g, -o.lr);
    }
  }
}

std::vector<std::pair<std::string, double>> SGD::group_options(size_t g) const {
  const SGDOptions& o = options_[g];
  return {{"lr", o.lr}, {"momentum", o.momentum}, {"dampening", o.dampening}, {"weight_decay", o.weight_decay},
          {"nesterov", o.nesterov}, {"maximize", o.maximize}};
}
void SGD::set_group_options(size_t g, const std::map<std::string, double>& v) {
  SGDOptions& o = options_[g];
  o.lr = v.at("lr");
  o.momentum = v.at("momentum");
  o.dampening = v.at("dampening");
  o.weight_decay = v.at("weight_decay");
  o.nesterov = v.at("nesterov") != 0;
  o.maximize = v.at("maximize") != 0;
}

// ---- Adam and AdamW ----
namespace {
// The shared part of Adam and AdamW after the weight decay has been applied.
void adam_update(Tensor& p, const Tensor& grad, std::map<std::string, Tensor>& st, double lr, double beta1,
                 double beta2, double eps, bool amsgrad) {
  Tensor& exp_avg = state_like(st, "exp_avg", p);
  Tensor& exp_avg_sq = state_like(st, "exp_avg_sq", p);
  const double step = next_step(st);
  exp_avg.mul_(beta1).add_(grad, 1 - beta1);
  exp_avg_sq.mul_(beta2).add_(grad * grad, 1 - beta2);  // addcmul_(grad, grad, value=1 - beta2)
  const double bias_correction1 = 1 - std::pow(beta1, step);
  const double bias_correction2 = 1 - std::pow(beta2, step);
  const double step_size = lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  Tensor denom;
  if (amsgrad) {
    Tensor& max_sq = state_like(st, "max_exp_avg_sq", p);
    max_sq.copy_(maximum(max_sq, exp_avg_sq));
    denom = (max_sq.sqrt() / bias_correction2_sqrt).add_(eps);
  } else {
    denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps);
  }
  p.add_(exp_avg / denom, -step_size);  // addcdiv_(exp_avg, denom, value=-step_size)
}
}  // namespace

// Adam and AdamW share everything but where the weight decay goes.
template <typename O>
void adam_family_step(std::vector<TensorList>& groups, const std::vector<O>& options,
                      const std::function<std::map<std::string, Tensor>&(size_t, size_t)>& state_of, bool decoupled) {
  NoGradGuard no_grad;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const O& o = options[gi];
    for (size_t j = 0; j < groups[gi].size(); ++j) {
      Tensor& p = groups[gi][j];
      if (!p.grad().defined()) continue;
      Tensor g = o.maximize ? -p.grad() : p.grad();
      if (decoupled) {
        p.mul_(1 - o.lr * o.weight_decay);  // AdamW
      } else if (o.weight_decay != 0) {
        g = g.add(p, o.weight_decay);  // Adam: L2 through the gradient
      }
      adam_update(p, g, state_of(gi, j), o.lr, o.beta1, o.beta2, o.eps, o.amsgrad);
    }
  }
}
template <typename O>
std::vector<std::pair<std::string, double>> adam_family_options(const O& o) {
  return {{"lr", o.lr},   {"beta1", o.beta1}, {"beta2", o.beta2}, {"eps", o.eps}, {"weight_decay", o.weight_decay},
          {"amsgrad", o.amsgrad}, {"maximize", o.maximize}};
}
template <typename O>
void set_adam_family_options(O& o, const std::map<std::string, double>& v) {
  o.lr = v.at("lr");
  o.beta1 = v.at("beta1");
  o.beta2 = v.at("beta2");
  o.eps = v.at("eps");
  o.weight_decay = v.at("weight_decay");
  o.amsgrad = v.at("amsgrad") != 0;
  o.maximize = v.at("maximize") != 0;
}

Adam::Adam(std::vector<ParamGroup<AdamOptions>> groups, const AdamOptions& defaults)
    : Impl("Adam", std::move(groups), defaults) {
  for (const AdamOptions& o : options_) {
    check_common("Adam", o.lr, o.weight_decay);
    check_betas("Adam", o.beta1, o.beta2, o.eps);
  }
}
void Adam::step() {
  adam_family_step(groups_, options_, [this](size_t g, size_t j) -> auto& { return state(first_index(g) + j); }, false);
}
std::vector<std::pair<std::string, double>> Adam::group_options(size_t g) const { return adam_family_options(options_[g]); }
void Adam::set_group_options(size_t g, const std::map<std::string, double>& v) { set_adam_family_options(options_[g], v); }

AdamW::AdamW(std::vector<ParamGroup<AdamWOptions>> groups, const AdamWOptions& defaults)
    : Impl("AdamW", std::move(groups), defaults) {
  for (const AdamWOptions& o : options_) {
    check_common("AdamW", o.lr, o.weight_decay);
    check_betas("AdamW", o.beta1, o.beta2, o.eps);
  }
}
void AdamW::step() {
  adam_family_step(groups_, options_, [this](size_t g, size_t j) -> auto& { return state(first_index(g) + j); }, true);
}
std::vector<std::pair<std::string, double>> AdamW::group_options(size_t g) const { return adam_family_options(options_[g]); }
void AdamW::set_group_options(size_t g, const std::map<std::string, double>& v) { set_adam_family_options(options_[g], v); }

// ---- RMSprop ----
RMSprop::RMSprop(std::vector<ParamGroup<RMSpropOptions>> groups, const RMSpropOptions& defaults)
    : Impl("RMSprop", std::move(groups), defaults) {
  for (const RMSpropOptions& o : options_) {
    check_common("RMSprop", o.lr, o.weight_decay);
    NNKIT_CHECK(o.eps >= 0, "[RMSprop] invalid epsilon value: ", o.eps);
    NNKIT_CHECK(o.momentum >= 0, "[RMSprop] invalid momentum value: ", o.momentum);
    NNKIT_CHECK(o.alpha >= 0, "[RMSprop] invalid alpha value: ", o.alpha);
  }
}

void RMSprop::step() {
  NoGradGuard no_grad;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const RMSpropOptions& o = options_[gi];
    for (size_t j = 0; j < groups_[gi].size(); ++j) {
      Tensor& p = groups_[gi][j];
      if (!p.grad().defined()) continue;
      auto& st = state(first_index(gi) + j);
      Tensor g = o.maximize ? -p.grad() : p.grad();
      next_step(st);
      if (o.weight_decay != 0) g = g.add(p, o.weight_decay);
      Tensor& square_avg = state_like(st, "square_avg", p);
      square_avg.mul_(o.alpha).add_(g * g, 1 - o.alpha);
      Tensor avg;
      if (o.centered) {
        Tensor& grad_avg = state_like(st, "grad_avg", p);
        grad_avg.mul_(o.alpha).add_(g, 1 - o.alpha);
        avg = square_avg.sub(grad_avg * grad_avg).sqrt().add_(o.eps);
      } else {
        avg = square_avg.sqrt().add_(o.eps);
      }
      if (o.momentum > 0) {
        Tensor& buf = state_like(st, "momentum_buffer", p);
        buf.mul_(o.momentum).add_(g / avg);
        p.add_(buf, -o.lr);
      } else {
        p.add_(g / avg, -o.lr);
      }
    }
  }
}

std::vector<std::pair<std::string, double>> RMSprop::group_options(size_t g) const {
  const RMSpropOptions& o = options_[g];
  return {{"lr", o.lr},           {"alpha", o.alpha},       {"eps", o.eps},          {"weight_decay", o.weight_decay},
          {"momentum", o.momentum}, {"centered", o.centered}, {"maximize", o.maximize}};
}
void RMSprop::set_group_options(size_t g, const std::map<std::string, double>& v) {
  RMSpropOptions& o = options_[g];
  o.lr = v.at("lr");
  o.alpha = v.at("alpha");
  o.eps = v.at("eps");
  o.weight_decay = v.at("weight_decay");
  o.momentum = v.at("momentum");
  o.centered = v.at("centered") != 0;
  o.maximize = v.at("maximize") != 0;
}

}  // namespace nnkit::optim
