#include "nnkit/optim/sgd.h"

#include "nnkit/autograd/grad_mode.h"
#include "nnkit/ops.h"

namespace nnkit::optim {

SGD::SGD(TensorList params, const SGDOptions& o) : params_(std::move(params)), options_(o) {
  NNKIT_CHECK(o.lr >= 0, "[SGD] invalid learning rate: ", o.lr);
  NNKIT_CHECK(o.momentum >= 0, "[SGD] invalid momentum value: ", o.momentum);
  NNKIT_CHECK(o.weight_decay >= 0, "[SGD] invalid weight_decay value: ", o.weight_decay);
  NNKIT_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
              "[SGD] nesterov momentum requires a momentum and zero dampening");
  for (size_t i = 0; i < params_.size(); ++i) {
    NNKIT_CHECK(params_[i].defined(), "[SGD] parameter ", i, " is undefined");
    NNKIT_CHECK(params_[i].is_leaf(), "[SGD] parameter ", i, " is not a leaf tensor (can't optimize a non-leaf)");
  }
  buffers_.resize(params_.size());
}

void SGD::zero_grad(bool set_to_none) {
  for (Tensor& p : params_) {
    if (!p.grad().defined()) continue;
    if (set_to_none) {
      p.mutable_grad() = Tensor();
    } else {
      NoGradGuard g;
      p.mutable_grad().zero_();
    }
  }
}

void SGD::step() {
  NoGradGuard no_grad;
  const SGDOptions& o = options_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    if (!p.grad().defined()) continue;
    Tensor g = p.grad();
    if (o.maximize) g = -g;
    if (o.weight_decay != 0) g = g.add(p, o.weight_decay);
    if (o.momentum != 0) {
      Tensor& b = buffers_[i];
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

}  // namespace nnkit::optim
