// Containers: Sequential (positional and named), ModuleList (a registered std::vector of
// modules), ModuleDict (ordered, by key), ParameterList and ParameterDict, with the names
// PyTorch gives their parameters, iteration, and why a plain std::vector is not enough.
#include <nnkit/nnkit.h>

#include <iostream>

using nnkit::Tensor;
using nnkit::TensorList;
namespace nn = nnkit::nn;

class MultiHead : public nn::Module {
 public:
  MultiHead() {
    trunk = register_module<nn::Sequential>("trunk", std::vector<std::pair<std::string, nn::Ptr<>>>{
                                                         {"fc", nn::make<nn::Linear>(8, 16)}, {"act", nn::make<nn::GELU>()}});
    blocks = register_module<nn::ModuleList>("blocks");
    for (int i = 0; i < 3; ++i) blocks->append(nn::make<nn::Linear>(16, 16));
    heads = register_module<nn::ModuleDict>("heads");
    heads->insert("class", nn::make<nn::Linear>(16, 5));
    heads->insert("box", nn::make<nn::Linear>(16, 4));
    scales = register_module<nn::ParameterDict>("scales");
    scales->insert("class", nnkit::ones({5}));
    scales->insert("box", nnkit::ones({4}));
  }
  TensorList forward_list(const TensorList& in) override {
    Tensor h = trunk(in[0]);
    for (nn::Module& block : *blocks) h = h + block(h).relu();  // iterate a ModuleList
    TensorList outs;
    for (auto& [key, head] : heads->items()) outs.push_back(head(h) * scales->at(key));
    return outs;
  }
  nn::Ptr<nn::Sequential> trunk;
  nn::Ptr<nn::ModuleList> blocks;
  nn::Ptr<nn::ModuleDict> heads;
  nn::Ptr<nn::ParameterDict> scales;
};

int main() {
  nnkit::manual_seed(0);
  auto model = nn::make<MultiHead>();
  std::cout << *model << "\n\nparameters:\n";
  for (auto& [name, p] : model->named_parameters()) std::cout << "  " << name << " " << p.sizes() << "\n";
  TensorList out = model(TensorList{nnkit::randn({2, 8})});
  std::cout << "outputs: " << out[0].sizes() << " and " << out[1].sizes() << "\n";
  if (!model->named_parameters().contains("blocks.2.weight") || !model->named_parameters().contains("heads.box.bias") ||
      !model->named_parameters().contains("scales.class"))
    return 1;

  // A std::vector of modules is invisible to parameters(), the optimizer and the state dict:
  // nnkit diagnoses it when the model is first called.
  struct Forgetful : nn::Module {
    Forgetful() { layers.push_back(nn::make<nn::Linear>(2, 2)); }
    Tensor forward(const Tensor& x) override { return layers[0](x); }
    std::vector<nn::Ptr<nn::Linear>> layers;
  };
  auto bad = nn::make<Forgetful>();
  try {
    bad(nnkit::ones({1, 2}));
    return 2;
  } catch (const nnkit::Error& e) {
    std::cout << "diagnosed: " << e.what() << "\n";
  }
  // Removing from a ModuleDict unregisters the module: its parameters are gone too.
  model->heads->pop("box");
  if (model->named_parameters().contains("heads.box.weight")) return 3;
  std::cout << "module_containers: ok\n";
  return 0;
}
