// Files that move between PyTorch and nnkit. tests/interop/pytorch_files.py (run by ctest
// before this test, with Debian's python3-torch) writes a ResNet block's and a small CNN's
// state dicts with torch.save and in Python safetensors' layout, plus PyTorch's outputs on a
// fixed input. Here nnkit builds the same models, loads both files, and must reproduce
// PyTorch's outputs (eval and train mode) and running statistics; then it writes its own file,
// which the `verify` step of the script loads back into PyTorch.
// The directory comes from NNKIT_INTEROP_DIR; without it (no Python/torch) the tests skip.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nnkit/nnkit.h>
#include <sstream>

using namespace nnkit;
namespace nn = nnkit::nn;

namespace {

struct ResNetBlock : nn::Module {
  ResNetBlock(int64_t cin, int64_t cout, int64_t stride) {
    conv1 = register_module<nn::Conv2d>(
        "conv1", {.in_channels = cin, .out_channels = cout, .kernel_size = 3, .stride = stride, .padding = 1, .bias = false});
    norm1 = register_module<nn::BatchNorm2d>("norm1", cout);
    act1 = register_module<nn::ReLU>("act1");
    conv2 = register_module<nn::Conv2d>(
        "conv2", {.in_channels = cout, .out_channels = cout, .kernel_size = 3, .stride = 1, .padding = 1, .bias = false});
    norm2 = register_module<nn::BatchNorm2d>("norm2", cout);
    if (stride != 1 || cin != cout)
      skip = register_module("skip", nn::Ptr<>(nn::make<nn::Sequential>(
                                         nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = cin, .out_channels = cout,
                                                                                  .kernel_size = 1, .stride = stride,
                                                                                  .bias = false}),
                                         nn::make<nn::BatchNorm2d>(cout))));
    else
      skip = register_module("skip", nn::Ptr<>(nn::make<nn::Identity>()));
    act2 = register_module<nn::ReLU>("act2");
  }
  Tensor forward(const Tensor& x) override {
    Tensor out = act1(norm1(conv1(x)));
    out = norm2(conv2(out));
    return act2(out + skip(x));
  }
  nn::Ptr<nn::Conv2d> conv1, conv2;
  nn::Ptr<nn::BatchNorm2d> norm1, norm2;
  nn::Ptr<nn::ReLU> act1, act2;
  nn::Ptr<> skip;
};

nn::Ptr<> small_cnn() {
  return nn::Ptr<>(nn::make<nn::Sequential>(
      nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 3, .out_channels = 8, .kernel_size = 3, .padding = 1}),
      nn::make<nn::BatchNorm2d>(8), nn::make<nn::ReLU>(), nn::make<nn::MaxPool2d>(2),
      nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 8, .out_channels = 16, .kernel_size = 3, .padding = 1}),
      nn::make<nn::ReLU>(), nn::make<nn::AdaptiveAvgPool2d>(1), nn::make<nn::Flatten>(), nn::make<nn::Linear>(16, 10)));
}

nn::Ptr<> build(const std::string& name) {
  if (name == "resnet_block") return nn::Ptr<>(nn::make<ResNetBlock>(64, 128, 2));
  return small_cnn();
}

std::string dir() {
  const char* d = std::getenv("NNKIT_INTEROP_DIR");
  return d ? d : "";
}

double max_rel_error(const Tensor& got, const Tensor& want) {
  return (got.to(kFloat64) - want.to(kFloat64)).abs().max().item<double>() /
         std::max(want.to(kFloat64).abs().max().item<double>(), 1e-30);
}

class PyTorchInterop : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (dir().empty()) GTEST_SKIP() << "NNKIT_INTEROP_DIR not set (python3 with torch not found at configure time)";
  }
};

}  // namespace

TEST_P(PyTorchInterop, LoadsTorchSaveAndReproducesOutputs) {
  const std::string name = GetParam();
  StateDict from_pt = load_pytorch(dir() + "/" + name + ".pt");
  StateDict from_st = load(dir() + "/" + name + ".safetensors");
  StateDict io = load(dir() + "/" + name + "_io.safetensors");
  ASSERT_EQ(from_pt.size(), from_st.size());
  for (auto& [k, t] : from_pt) {
    ASSERT_TRUE(from_st.contains(k)) << k;
    EXPECT_TRUE(equal(t, from_st.at(k))) << k;  // the two files hold the same tensors
  }
  EXPECT_EQ(from_pt.at(name == "resnet_block" ? "norm1.num_batches_tracked" : "1.num_batches_tracked").dtype(), kInt64);

  for (const StateDict* sd : {&from_pt, &from_st}) {
    nn::Ptr<> model = build(name);
    nn::LoadResult r = model->load_state_dict(*sd);  // strict: every key matches
    EXPECT_TRUE(r.missing_keys.empty() && r.unexpected_keys.empty());
    model->eval();
    Tensor y_eval;
    {
      NoGradGuard g;
      y_eval = model(io.at("input"));
    }
    EXPECT_LE(max_rel_error(y_eval, io.at("output_eval")), 1e-5) << name;
    model->train();
    Tensor y_train;
    {
      NoGradGuard g;
      y_train = model(io.at("input"));
    }
    EXPECT_LE(max_rel_error(y_train, io.at("output_train")), 1e-5) << name;
    StateDict after = model->state_dict();
    for (auto& [k, t] : io) {
      if (k.rfind("after_train.", 0) != 0) continue;
      const std::string key = k.substr(std::string("after_train.").size());
      EXPECT_LE(max_rel_error(after.at(key), t), 1e-6) << key;
    }
  }
}

TEST_P(PyTorchInterop, WritesFilesPyTorchReads) {
  // The verify step of pytorch_files.py loads this file into PyTorch and compares outputs.
  const std::string name = GetParam();
  nn::Ptr<> model = build(name);
  model->load_state_dict(load_pytorch(dir() + "/" + name + ".pt"));
  model->eval();
  StateDict io = load(dir() + "/" + name + "_io.safetensors");
  StateDict out = model->state_dict();
  {
    NoGradGuard g;
    out.insert("input", io.at("input"));
    out.insert("output_eval", model(io.at("input")));
  }
  save(out, dir() + "/" + name + "_from_nnkit.safetensors");
}

INSTANTIATE_TEST_SUITE_P(Models, PyTorchInterop, ::testing::Values("resnet_block", "small_cnn"));

TEST(PyTorchLoader, RejectsWhatIsNotAStateDict) {
  if (dir().empty()) GTEST_SKIP() << "NNKIT_INTEROP_DIR not set";
  std::ifstream f(dir() + "/small_cnn.pt", std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string good = ss.str();
  auto error_of = [](const std::string& bytes) {
    try {
      load_pytorch_bytes(bytes);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  EXPECT_EQ(error_of(good), "<no error>");
  // Every truncation is an error, never a crash.
  for (size_t n : {size_t(0), size_t(3), size_t(30), good.size() / 2, good.size() - 1})
    EXPECT_NE(error_of(good.substr(0, n)), "<no error>") << n;
  // A global that is not part of a state dict (same length, so the archive stays valid).
  std::string evil = good;
  size_t at = evil.find("collections\nOrderedDict");
  ASSERT_NE(at, std::string::npos);
  evil.replace(at, 23, "subprocess\nPopenxxxxxxx");  // same length: the archive stays valid
  std::string e = error_of(evil);
  EXPECT_NE(e.find("subprocess.Popenxxxxxxx"), std::string::npos) << e;
  EXPECT_NE(e.find("nothing in the file is executed"), std::string::npos) << e;
  // Not a zip at all.
  EXPECT_NE(error_of("PK nope, just text").find("not a PyTorch zip checkpoint"), std::string::npos);
  // Flipping bytes anywhere never crashes.
  for (size_t i = 0; i < good.size(); i += 97) {
    std::string m = good;
    m[i] = char(m[i] ^ 0x5a);
    (void)error_of(m);
  }
}
