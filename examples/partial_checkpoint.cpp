// The partial-checkpoint pattern: a V1 model is trained and saved; V2 adds a layer. V2 loads
// the V1 file with strict=false, is told exactly which keys were missing (the new layer) and
// which were unexpected (a removed one), keeps every loaded tensor, and re-initializes only
// the new layer. A shape mismatch would still be an error, and a failed load changes nothing.
#include <nnkit/nnkit.h>

#include <cstdio>
#include <iostream>

using nnkit::Tensor;
namespace nn = nnkit::nn;

struct V1 : nn::Module {
  V1() {
    encoder = register_module<nn::Linear>("encoder", 8, 16);
    legacy = register_module<nn::Linear>("legacy", 16, 16);  // dropped in V2
    head = register_module<nn::Linear>("head", 16, 3);
  }
  Tensor forward(const Tensor& x) override { return head(legacy(encoder(x).relu()).relu()); }
  nn::Ptr<nn::Linear> encoder, legacy, head;
};

struct V2 : nn::Module {
  V2() {
    encoder = register_module<nn::Linear>("encoder", 8, 16);
    adapter = register_module<nn::Sequential>("adapter", nn::make<nn::LayerNorm>(nnkit::Shape{16}),
                                              nn::make<nn::Linear>(16, 16));  // new in V2
    head = register_module<nn::Linear>("head", 16, 3);
  }
  Tensor forward(const Tensor& x) override { return head(adapter(encoder(x).relu()).relu()); }
  nn::Ptr<nn::Linear> encoder, head;
  nn::Ptr<nn::Sequential> adapter;
};

int main() {
  nnkit::manual_seed(0);
  auto v1 = nn::make<V1>();
  nnkit::save(v1->state_dict(), "v1.safetensors");

  auto v2 = nn::make<V2>();
  nn::LoadResult r = v2->load_state_dict(nnkit::load("v1.safetensors"), {.strict = false});
  std::cout << "missing keys (new in V2):";
  for (auto& k : r.missing_keys) std::cout << " " << k;
  std::cout << "\nunexpected keys (gone from V2):";
  for (auto& k : r.unexpected_keys) std::cout << " " << k;
  std::cout << "\n";
  v2->adapter->reset_parameters();  // only the new layer is (re-)initialized

  if (!nnkit::equal(v2->encoder->weight, v1->encoder->weight) || !nnkit::equal(v2->head->bias, v1->head->bias)) return 1;
  if (r.missing_keys.size() != 4 || r.unexpected_keys.size() != 2) return 2;

  // A strict load of the same file fails, listing every problem, and changes nothing.
  Tensor before = v2->head->weight.clone();
  try {
    v2->load_state_dict(nnkit::load("v1.safetensors"));
    return 3;
  } catch (const nnkit::Error& e) {
    std::cout << "strict load refused:\n" << e.what() << "\n";
  }
  if (!nnkit::equal(before, v2->head->weight)) return 4;
  std::remove("v1.safetensors");
  std::cout << "partial_checkpoint: ok\n";
  return 0;
}
