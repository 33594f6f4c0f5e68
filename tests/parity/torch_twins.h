#pragma once
// LibTorch twins of nnkit modules, and copying a LibTorch module's state into its nnkit twin,
// for the parity suite and the benchmarks (bench/ includes this file).
#include <torch/torch.h>

#include <algorithm>
#include <nnkit/nnkit.h>
#include <string>
#include <vector>

namespace parity {

// Loads a LibTorch module's parameters and buffers into the nnkit module by name (strictly: the
// two name sets must be equal, which also proves the names and shapes match).
inline void load_from_torch(nnkit::nn::Module& nkm, torch::nn::Module& tm) {
  auto tp = tm.named_parameters(true);
  auto tb = tm.named_buffers(true);
  std::vector<std::string> tnames;
  for (auto& p : tp) tnames.push_back(p.key());
  for (auto& b : tb) tnames.push_back(b.key());
  nnkit::StateDict sd = nkm.state_dict();
  std::vector<std::string> nnames = sd.keys();
  std::sort(tnames.begin(), tnames.end());
  std::sort(nnames.begin(), nnames.end());
  if (nnames != tnames) {
    std::string msg = "load_from_torch: parameter/buffer names differ. nnkit:";
    for (auto& n : nnames) msg += " " + n;
    msg += "; LibTorch:";
    for (auto& n : tnames) msg += " " + n;
    throw std::runtime_error(msg);
  }
  nnkit::StateDict src;
  for (auto* list : {&tp, &tb})
    for (auto& item : *list) {
      torch::Tensor v = item.value().detach().contiguous();
      src.insert(item.key(), nnkit::from_blob(v.data_ptr(), v.sizes().vec(), sd.at(item.key()).dtype()).clone());
    }
  nkm.load_state_dict(src);
}

// torchvision's BasicBlock in LibTorch: the twin of nnkit::models::BasicBlock.
struct TorchBasicBlockImpl : torch::nn::Module {
  TorchBasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride = 1) {
    conv1 = register_module(
        "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(inplanes, planes, 3).stride(stride).padding(1).bias(false)));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(planes, planes, 3).padding(1).bias(false)));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
    if (stride != 1 || inplanes != planes)
      downsample = register_module(
          "downsample", torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(inplanes, planes, 1).stride(stride).bias(false)),
                                              torch::nn::BatchNorm2d(planes)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor out = torch::relu(bn1(conv1(x)));
    out = bn2(conv2(out));
    return torch::relu(out + (downsample ? downsample->forward(x) : x));
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(TorchBasicBlock);

}  // namespace parity
