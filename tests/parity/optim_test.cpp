// Parity with LibTorch: optimizers: 25 steps of nnkit's and LibTorch's update rules on the same gradients (src/optim)
// Helpers and tolerances: parity_util.h.
#include "parity/parity_util.h"

using namespace parity;

namespace {
template <typename MakeNk, typename MakeTorch>
double optimizer_run(const std::string& name, MakeNk make_nk, MakeTorch make_torch, nk::Dtype dt = nk::kFloat32) {
  nk::manual_seed(77);
  std::vector<nk::Tensor> np = {R({4, 3}, dt).requires_grad_(), R({3}, dt).requires_grad_()};
  std::vector<torch::Tensor> tp;
  for (auto& p : np) tp.push_back(to_torch(p.detach()).clone().requires_grad_(true));
  auto nopt = make_nk(np);
  auto topt = make_torch(tp);
  double worst_err = 0;
  for (int step = 0; step < 25; ++step) {
    for (size_t i = 0; i < np.size(); ++i) {
      nk::Tensor g = R(np[i].sizes(), dt) * (1.0 + step % 3);
      np[i].set_grad(g);
      tp[i].mutable_grad() = to_torch(g).clone();
    }
    nopt->step();
    topt->step();
    for (size_t i = 0; i < np.size(); ++i) worst_err = std::max(worst_err, rel_err(np[i].detach(), tp[i].detach()));
  }
  record("optim " + name, worst_err);
  return worst_err;
}
}  // namespace

TEST(ParityOptim, TwentyFiveStepsMatchLibTorch) {
  using namespace nk::optim;
  struct Case {
    std::string name;
    std::function<std::unique_ptr<Optimizer>(nk::TensorList)> nk;
    std::function<std::unique_ptr<torch::optim::Optimizer>(std::vector<torch::Tensor>)> th;
  };
  std::vector<Case> cases = {
      {"SGD momentum+wd", [](nk::TensorList p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.05, .momentum = 0.9, .dampening = 0.1, .weight_decay = 1e-3}); },
       [](std::vector<torch::Tensor> p) { return std::make_unique<torch::optim::SGD>(p, torch::optim::SGDOptions(0.05).momentum(0.9).dampening(0.1).weight_decay(1e-3)); }},
      {"SGD nesterov", [](nk::TensorList p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.05, .momentum = 0.8, .nesterov = true}); },
       [](std::vector<torch::Tensor> p) { return std::make_unique<torch::optim::SGD>(p, torch::optim::SGDOptions(0.05).momentum(0.8).nesterov(true)); }},
      {"Adam", [](nk::TensorList p) { return std::make_unique<Adam>(p, AdamOptions{.lr = 0.01, .weight_decay = 1e-2}); },
       [](std::vector<torch::Tensor> p) { return std::make_unique<torch::optim::Adam>(p, torch::optim::AdamOptions(0.01).weight_decay(1e-2)); }},
      {"Adam amsgrad", [](nk::TensorList p) { return std::make_unique<Adam>(p, AdamOptions{.lr = 0.01, .beta1 = 0.8, .beta2 = 0.99, .amsgrad = true}); },
       [](std::vector<torch::Tensor> p) { return std::make_unique<torch::optim::Adam>(p, torch::optim::AdamOptions(0.01).betas({0.8, 0.99}).amsgrad(true)); }},
      {"AdamW", [](nk::TensorList p) { return std::make_unique<AdamW>(p, AdamWOptions{.lr = 0.01, .weight_decay = 0.1}); },
       [](std::vector<torch::Tensor> p) { return std::make_unique<torch::optim::AdamW>(p, torch::optim::AdamWOptions(0.01).weight_decay(0.1)); }},
      {"AdamW amsgrad", [](nk::TensorList p) { return std::make_unique<AdamW>(p, AdamWOptions{.lr = 0.02, .amsgrad = true}); },
       [](std::vector<torch::Tensor> p) { return std::make_unique<torch::optim::AdamW>(p, torch::optim::AdamWOptions(0.02).amsgrad(true)); }},
      {"RMSprop", [](nk::TensorList p) { return std::make_unique<RMSprop>(p, RMSpropOptions{.lr = 0.01, .weight_decay = 1e-3}); },
       [](std::vector<torch::Tensor> p) { return std::make_unique<torch::optim::RMSprop>(p, torch::optim::RMSpropOptions(0.01).weight_decay(1e-3)); }},
      {"RMSprop centered+momentum", [](nk::TensorList p) { return std::make_unique<RMSprop>(p, RMSpropOptions{.lr = 0.01, .alpha = 0.9, .momentum = 0.5, .centered = true}); },
       [](std::vector<torch::Tensor> p) { return std::make_unique<torch::optim::RMSprop>(p, torch::optim::RMSpropOptions(0.01).alpha(0.9).momentum(0.5).centered(true)); }},
  };
  for (auto& c : cases) {
    for (nk::Dtype dt : {nk::kFloat32, nk::kFloat64}) {
      double e = optimizer_run(c.name, c.nk, c.th, dt);
      EXPECT_LE(e, dt == nk::kFloat64 ? 1e-12 : 1e-6) << c.name << " " << dt;
    }
  }
}
