// The CUDA backend against the CPU: losses.
// Helpers, fixtures and tolerances: cuda_util.h.
#include "cuda/cuda_util.h"

TEST_F(Cuda, Losses) {
  using R = F::Reduction;
  // Loss modules with weights get their own instance per device (see CloneThenToLeavesTheOriginal...).
  auto check_loss = [](const std::string& name, const std::function<nn::Ptr<>()>& make, const TensorList& inputs) {
    SCOPED_TRACE(name);
    nn::Ptr<> cpu = make(), gpu = make();
    gpu->to(dev());
    check_modules(*cpu, *gpu, inputs);
  };
  for (Dtype dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor in = leaf({6, 5}, dt), tgt = randn({6, 5}, {.dtype = dt}), w = rand({5}, {.dtype = dt}) + 0.5;
    Tensor prob = rand({6, 5}, {.dtype = dt}) * 0.9 + 0.05;
    prob.requires_grad_();
    Tensor labels = randint(0, 5, {6});
    Tensor labels_ignored = longs({0, -100, 4, 2, -100, 1});
    Tensor seg = leaf({2, 5, 3, 4}, dt), seg_labels = randint(0, 5, {2, 3, 4});
    for (R r : {R::Mean, R::Sum, R::None}) {
      SCOPED_TRACE(static_cast<int>(r));
      check_loss("MSELoss", [r] { return nn::Ptr<>(nn::make<nn::MSELoss>(r)); }, {in, tgt});
      check_loss("MSELoss, target requires grad", [r] { return nn::Ptr<>(nn::make<nn::MSELoss>(r)); }, {in, leaf({6, 5}, dt)});
      check_loss("L1Loss", [r] { return nn::Ptr<>(nn::make<nn::L1Loss>(r)); }, {in, tgt});
      check_loss("CrossEntropyLoss", [r] { return nn::Ptr<>(nn::make<nn::CrossEntropyLoss>(F::CrossEntropyOptions{.reduction = r})); },
                 {in, labels});
      check_loss("CrossEntropyLoss weight, ignore_index, smoothing",
                 [r, w] {
                   return nn::Ptr<>(nn::make<nn::CrossEntropyLoss>(
                       F::CrossEntropyOptions{.weight = w.clone(), .reduction = r, .label_smoothing = 0.1}));
                 },
                 {in, labels_ignored});
      check_loss("CrossEntropyLoss [N, C, d1, d2]",
                 [r, w] { return nn::Ptr<>(nn::make<nn::CrossEntropyLoss>(F::CrossEntropyOptions{.weight = w.clone(), .reduction = r})); },
                 {seg, seg_labels});
      check_loss("NLLLoss",
                 [r, w] {
                   return nn::Ptr<>(nn::make<nn::NLLLoss>(F::CrossEntropyOptions{.weight = w.clone(), .ignore_index = 4, .reduction = r}));
                 },
                 {in.log_softmax(1), labels});
      check_loss("BCELoss", [r] { return nn::Ptr<>(nn::make<nn::BCELoss>(Tensor(), r)); }, {prob, rand({6, 5}, {.dtype = dt})});
      check_loss("BCELoss weight", [r, w] { return nn::Ptr<>(nn::make<nn::BCELoss>(w.clone(), r)); },
                 {prob, rand({6, 5}, {.dtype = dt})});
      check_loss("BCEWithLogitsLoss", [r] { return nn::Ptr<>(nn::make<nn::BCEWithLogitsLoss>(Tensor(), Tensor(), r)); },
                 {in * 20.0, rand({6, 5}, {.dtype = dt})});
      check_loss("BCEWithLogitsLoss weight, pos_weight",
                 [r, w, dt] { return nn::Ptr<>(nn::make<nn::BCEWithLogitsLoss>(w.clone(), full({5}, 2.0, {.dtype = dt}), r)); },
                 {in, rand({6, 5}, {.dtype = dt})});
    }
  }
  // All targets ignored: a mean over nothing (NaN), the same on both devices.
  check_op("cross_entropy all ignored", OP(F::cross_entropy(x[0], x[1])), {leaf({3, 4}), longs({-100, -100, -100})});
}
