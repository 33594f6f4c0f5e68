// The program of docs/getting-started.md: a first module, trained with AdamW, a cosine
// schedule and gradient clipping, saved and resumed. Built and run by the tests, so the
// guide's code stays true.
#include <nnkit/nnkit.h>

#include <cstdio>
#include <iostream>

namespace nn = nnkit::nn;
using nnkit::Tensor;

class Mlp : public nn::Module {
 public:
  Mlp(int64_t in, int64_t hidden, int64_t out) {
    fc1 = register_module<nn::Linear>("fc1", in, hidden);
    act = register_module<nn::GELU>("act");
    fc2 = register_module<nn::Linear>("fc2", hidden, out);
  }
  Tensor forward(const Tensor& x) override { return fc2(act(fc1(x))); }

  nn::Ptr<nn::Linear> fc1, fc2;
  nn::Ptr<nn::GELU> act;
};

int main() {
  nnkit::manual_seed(0);
  auto model = nn::make<Mlp>(4, 32, 3);
  std::cout << *model << "\n";
  for (auto& [name, p] : model->named_parameters()) std::cout << name << " " << p.sizes() << "\n";

  // A learnable task: the class is the index of the largest of the first three features.
  Tensor x = nnkit::randn({256, 4});
  Tensor y = x.narrow(1, 0, 3).argmax(1);

  nnkit::optim::AdamW opt(model->parameters(), {.lr = 1e-2, .weight_decay = 1e-2});
  nnkit::optim::CosineAnnealingLR schedule(opt, /*T_max=*/100);
  nn::CrossEntropyLoss loss_fn;
  double first = 0, last = 0;
  for (int epoch = 0; epoch < 100; ++epoch) {
    model->train();
    opt.zero_grad();
    Tensor loss = loss_fn(model(x), y);
    loss.backward();
    nnkit::optim::clip_grad_norm_(model->parameters(), 1.0);
    opt.step();
    schedule.step();
    (epoch == 0 ? first : last) = loss.item<double>();
  }
  model->eval();
  double accuracy = (model(x).argmax(1) == y).to(nnkit::kFloat32).mean().item<double>();
  std::printf("loss %.3f -> %.3f, accuracy %.1f%%\n", first, last, 100 * accuracy);

  nnkit::save(model->state_dict(), "model.safetensors");
  nnkit::save(opt.state_dict(), "optim.safetensors");
  auto restored = nn::make<Mlp>(4, 32, 3);
  nnkit::optim::AdamW opt2(restored->parameters(), {.lr = 1e-2, .weight_decay = 1e-2});
  restored->load_state_dict(nnkit::load("model.safetensors"));
  opt2.load_state_dict(nnkit::load("optim.safetensors"));
  restored->eval();
  bool same = nnkit::equal(restored(x), model(x));
  std::remove("model.safetensors");
  std::remove("optim.safetensors");
  return last < first * 0.5 && accuracy > 0.9 && same ? 0 : 1;
}
