// Optimizer base: parameter groups, zero_grad, state dicts; gradient clipping.
#include "nnkit/optim/optimizer.h"

#include <cmath>
#include <set>
#include <sstream>

#include "nnkit/autograd/grad_mode.h"
#include "nnkit/ops.h"

namespace nnkit::optim {

Optimizer::Optimizer(std::string name, std::vector<TensorList> groups) : groups_(std::move(groups)), name_(std::move(name)) {
  NNKIT_CHECK(!groups_.empty(), "[", name_, "] needs at least one parameter group");
  std::set<const TensorImpl*> seen;
  size_t index = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    NNKIT_CHECK(!groups_[g].empty(), "[", name_, "] parameter group ", g, " is empty");
    for (const Tensor& p : groups_[g]) {
      NNKIT_CHECK(p.defined(), "[", name_, "] parameter ", index, " is undefined");
      NNKIT_CHECK(p.is_leaf(), "[", name_, "] parameter ", index, " is not a leaf tensor (can't optimize a non-leaf)");
      NNKIT_CHECK(p.is_floating_point(), "[", name_, "] parameter ", index, " has dtype ", p.dtype(),
                  "; only floating-point tensors can be optimized");
      NNKIT_CHECK(seen.insert(p.impl()).second, "[", name_, "] parameter ", index,
                  " appears twice (in one group or in two groups)");
      ++index;
    }
  }
  state_.resize(index);
}

void Optimizer::zero_grad(bool set_to_none) {
  for (auto& group : groups_)
    for (Tensor& p : group) {
      if (!p.grad().defined()) continue;
      if (set_to_none) {
        p.mutable_grad() = Tensor();
      } else {
        NoGradGuard g;
        p.mutable_grad().zero_();
      }
    }
}

TensorList Optimizer::all_params() const {
  TensorList out;
  for (auto& g : groups_) out.insert(out.end(), g.begin(), g.end());
  return out;
}

size_t Optimizer::first_index(size_t group) const {
  size_t i = 0;
  for (size_t g = 0; g < group; ++g) i += groups_[g].size();
  return i;
}

StateDict Optimizer::state_dict() const {
  StateDict sd;
  for (size_t i = 0; i < state_.size(); ++i)
    for (auto& [k, t] : state_[i]) sd.insert("state." + std::to_string(i) + "." + k, t.clone());
  for (size_t g = 0; g < groups_.size(); ++g)
    for (auto& [k, v] : group_options(g))
      sd.insert("param_groups." + std::to_string(g) + "." + k, full({}, v, {.dtype = kFloat64}));
  return sd;
}

void Optimizer::load_state_dict(const StateDict& sd) {
  std::string problems;
  auto problem = [&](const std::string& p) { problems += "\n  " + p; };
  const TensorList params = all_params();
  std::vector<std::map<std::string, Tensor>> new_state(params.size());
  std::vector<std::map<std::string, double>> new_options(groups_.size());
  for (auto& [key, t] : sd) {
    if (key.rfind("state.", 0) == 0) {
      const size_t dot = key.find('.', 6);
      size_t i = 0;
      bool ok = dot != std::string::npos && dot > 6;
      if (ok) {
        try {
          i = std::stoul(key.substr(6, dot - 6));
        } catch (...) {
          ok = false;
        }
      }
      if (!ok || i >= params.size()) {
        problem("'" + key + "' names no parameter (this optimizer has " + std::to_string(params.size()) + ")");
        continue;
      }
      const std::string name = key.substr(dot + 1);
      const Tensor& p = params[i];
      if (name == "step") {
        if (t.numel() != 1) problem("'" + key + "' must hold one number");
      } else if (t.sizes() != p.sizes()) {
        std::ostringstream os;
        os << "'" << key << "' has shape " << t.sizes() << " but parameter " << i << " has shape " << p.sizes();
        problem(os.str());
        continue;
      }
      new_state[i][name] = t;
    } else if (key.rfind("param_groups.", 0) == 0) {
      const size_t dot = key.find('.', 13);
      size_t g = 0;
      bool ok = dot != std::string::npos && dot > 13;
      if (ok) {
        try {
          g = std::stoul(key.substr(13, dot - 13));
        } catch (...) {
          ok = false;
        }
      }
      if (!ok || g >= groups_.size()) {
        problem("'" + key + "' names no parameter group (this optimizer has " + std::to_string(groups_.size()) + ")");
        continue;
      }
      if (t.numel() != 1) {
        problem("'" + key + "' must hold one number");
        continue;
      }
      new_options[g][key.substr(dot + 1)] = t.to(kFloat64).item<double>();
    } else {
      problem("unexpected key '" + key + "'");
    }
  }
  for (size_t g = 0; g < groups_.size(); ++g)
    for (auto& [k, v] : group_options(g)) {
      (void)v;
      if (!new_options[g].count(k)) problem("missing 'param_groups." + std::to_string(g) + "." + k + "'");
    }
  NNKIT_CHECK(problems.empty(), "[", name_, "::load_state_dict] the state does not fit this optimizer (", name_, ", ",
              params.size(), " parameters in ", groups_.size(), " groups); nothing was loaded:", problems);
  // Everything fits: copy, with each state tensor on its parameter's device and dtype.
  for (size_t i = 0; i < params.size(); ++i) {
    std::map<std::string, Tensor> st;
    for (auto& [name, t] : new_state[i])
      st[name] = name == "step" ? t.to(kFloat64).reshape({}).clone() : t.to(params[i].device(), params[i].dtype()).clone();
    state_[i] = std::move(st);
  }
  for (size_t g = 0; g < groups_.size(); ++g) set_group_options(g, new_options[g]);
}

double clip_grad_norm_(const TensorList& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  NoGradGuard no_grad;
  TensorList grads;
  for (const Tensor& p : params)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  double total = 0;
  if (std::isinf(norm_type)) {
    for (const Tensor& g : grads) total = std::max(total, g.abs().max().to(kFloat64).item<double>());
  } else {
    // torch.norm(torch.stack([torch.norm(g, p) for g in grads]), p)
    for (const Tensor& g : grads) {
      double n = g.abs().to(kFloat64).pow(norm_type).sum().item<double>();
      total += std::pow(std::pow(n, 1.0 / norm_type), norm_type);
    }
    total = std::pow(total, 1.0 / norm_type);
  }
  NNKIT_CHECK(!(error_if_nonfinite && !std::isfinite(total)), "[clip_grad_norm_] the total norm of order ", norm_type,
              " of the gradients is non-finite (", total, "), so it cannot be clipped; pass error_if_nonfinite=false "
              "to clip anyway");
  const double clip_coef = max_norm / (total + 1e-6);
  if (clip_coef < 1)
    for (Tensor g : grads) g.mul_(clip_coef);  // a handle: scales the gradient in place
  return total;
}

void clip_grad_value_(const TensorList& params, double clip_value) {
  NNKIT_CHECK(clip_value >= 0, "[clip_grad_value_] clip_value must be non-negative, got ", clip_value);
  NoGradGuard no_grad;
  for (const Tensor& p : params)
    if (p.defined() && p.grad().defined()) {
      Tensor g = p.grad();  // a handle: clamps the gradient in place
      g.clamp_(-clip_value, clip_value);
    }
}

}  // namespace nnkit::optim
