// Acceptance example from shared/spec/state_and_buffers.cpp, built and run by the tests (ctest example_state_and_buffers).
// Target user experience: buffers, containers, state dicts, partial checkpoint loading,
// device movement, and the errors a user gets for a broken module contract.
#include <nnkit/nnkit.h>

#include <iostream>

using nnkit::Tensor;
namespace nn = nnkit::nn;
namespace init = nnkit::nn::init;

// Buffers: saved and moved with the module, never touched by an optimizer.
class RunningStats : public nn::Module {
 public:
  explicit RunningStats(int64_t n) {
    running_mean = register_buffer("running_mean", nnkit::zeros({n}));
    running_var = register_buffer("running_var", nnkit::ones({n}));
    weight = register_parameter("weight", nnkit::ones({n}));
    bias = register_parameter("bias", nnkit::zeros({n}));
  }
  Tensor forward(const Tensor& x) override {
    if (is_training()) {
      nnkit::NoGradGuard g;
      running_mean.mul_(0.9).add_(x.mean(0), /*alpha=*/0.1);  // in-place update of the registered buffer
      running_var.mul_(0.9).add_(x.var(0), /*alpha=*/0.1);
    }
    return (x - running_mean) / (running_var + 1e-5).sqrt() * weight + bias;
  }
  Tensor running_mean, running_var, weight, bias;
};

class ModelV1 : public nn::Module {
 public:
  ModelV1() {
    encoder = register_module<nn::Linear>("encoder", 10, 20);
    decoder = register_module<nn::Linear>("decoder", 20, 10);
  }
  Tensor forward(const Tensor& x) override { return decoder(encoder(x)); }
  nn::Ptr<nn::Linear> encoder, decoder;
};

class ModelV2 : public nn::Module {
 public:
  ModelV2() {
    encoder = register_module<nn::Linear>("encoder", 10, 20);
    middle = register_module<nn::Linear>("middle", 20, 20);  // new layer
    decoder = register_module<nn::Linear>("decoder", 20, 10);
    layers = register_module("layers", nn::make<nn::ModuleList>());
    for (int i = 0; i < 3; ++i) layers->append(nn::make<nn::Linear>(10, 10));  // registered, unlike a std::vector
    heads = register_module("heads", nn::make<nn::ModuleDict>());
    heads->insert("cls", nn::make<nn::Linear>(10, 5));
    reset_parameters();
  }
  void reset_parameters() override {
    for (nn::Module& m : modules())
      if (auto* l = m.as<nn::Linear>()) {
        init::xavier_uniform_(l->weight);
        if (l->bias.defined()) init::zeros_(l->bias);
      }
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = x;
    for (nn::Module& layer : *layers) h = layer(h);
    return heads->at("cls")(decoder(middle(encoder(h))));
  }
  nn::Ptr<nn::Linear> encoder, middle, decoder;
  nn::Ptr<nn::ModuleList> layers;
  nn::Ptr<nn::ModuleDict> heads;
};

int main() {
  auto stats = nn::make<RunningStats>(10);
  stats(nnkit::randn({32, 10}));
  if (stats->state_dict().size() != 4) return 1;  // buffers are in the state dict
  nnkit::save(stats->state_dict(), "stats.safetensors");  // readable by Python's safetensors

  auto v1 = nn::make<ModelV1>();
  nnkit::save(v1->state_dict(), "model_v1.safetensors");

  auto v2 = nn::make<ModelV2>();
  nn::LoadResult r = v2->load_state_dict(nnkit::load("model_v1.safetensors"), {.strict = false});
  for (auto& k : r.missing_keys) std::cout << "missing: " << k << "\n";  // middle.*, layers.*, heads.*
  for (auto& k : r.unexpected_keys) std::cout << "unexpected: " << k << "\n";
  v2->middle->reset_parameters();  // only the new layer is re-initialized

  // Strict loading of a mismatched checkpoint throws a clear error and changes nothing.
  Tensor before = v2->encoder->weight.clone();
  try {
    v2->load_state_dict(nnkit::load("model_v1.safetensors"));
    return 2;
  } catch (const nnkit::Error& e) {
    std::cout << e.what() << "\n";  // names the missing keys
  }
  if (!nnkit::equal(before, v2->encoder->weight)) return 3;

  // Broken contracts are caught with a message that says what to do.
  try {
    struct Bad : nn::Module {
      Bad() { register_module("skip", nn::Ptr<>{}); }  // an empty slot
    } bad;
    return 4;
  } catch (const nnkit::Error& e) {
    std::cout << e.what() << "\n";  // suggests nn::Identity
  }

  // Device movement carries parameters and buffers; a GPU build moves them to CUDA.
  if (nnkit::cuda::is_available()) {
    v2->to(nnkit::Device::cuda());
    for (auto& [name, p] : v2->named_parameters())
      if (!p.is_cuda()) return 5;
  }
  v2->eval();
  std::cout << *v2 << "\n";
  return 0;
}
