// Files that move between PyTorch and nnkit. tests/interop/pytorch_files.py (run by ctest
// before this test, with Debian's python3-torch) writes a ResNet block's and a small CNN's
// state dicts with torch.save and in Python safetensors' layout, plus PyTorch's outputs on a
// fixed input. Here nnkit builds the same models, loads both files, and must reproduce
// PyTorch's outputs (eval and train mode) and running statistics; then it writes its own file,
// which the `verify` step of the script loads back into PyTorch.
// The directory comes from NNKIT_INTEROP_DIR; without it (no Python/torch) the tests skip.
#include <gtest/gtest.h>

#include <filesystem>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nnkit/nnkit.h>
#include <sstream>

using namespace nnkit;
namespace nn = nnkit::nn;

namespace {

nn::Ptr<> small_cnn() {
  return nn::Ptr<>(nn::make<nn::Sequential>(
      nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 3, .out_channels = 8, .kernel_size = 3, .padding = 1}),
      nn::make<nn::BatchNorm2d>(8), nn::make<nn::ReLU>(), nn::make<nn::MaxPool2d>(2),
      nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 8, .out_channels = 16, .kernel_size = 3, .padding = 1}),
      nn::make<nn::ReLU>(), nn::make<nn::AdaptiveAvgPool2d>(1), nn::make<nn::Flatten>(), nn::make<nn::Linear>(16, 10)));
}

nn::Ptr<> build(const std::string& name) {
  if (name == "resnet_block") return nn::Ptr<>(nn::make<models::BasicBlock>(64, 128, 2));
  if (name == "resnet18") return nn::Ptr<>(models::resnet18({.num_classes = 10}));
  if (name == "resnet50") return nn::Ptr<>(models::resnet50({.num_classes = 10}));
  if (name == "resnext50_32x4d") return nn::Ptr<>(models::resnext50_32x4d({.num_classes = 10}));
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
    if (!std::filesystem::exists(dir() + "/" + GetParam() + ".pt"))
      GTEST_SKIP() << GetParam() << ".pt was not written (torchvision's models need python3-torchvision)";
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
  EXPECT_EQ(from_pt.at(from_pt.contains("bn1.num_batches_tracked") ? "bn1.num_batches_tracked" : "1.num_batches_tracked").dtype(),
            kInt64);

  // Training mode through a deep network (the torchvision ResNets: 18-50 layers of batch norm,
  // whose last stage sees 2 x 2 positions of 2 images): float32 rounding differences of 1e-7
  // grow through the normalizations of few values, so the train-mode output and the running
  // statistics get a wider bound there. Eval mode (fixed statistics) holds 1e-5 everywhere, and
  // each layer's train mode is checked to 1e-5 against LibTorch by the parity suite.
  const bool deep = name.rfind("res", 0) == 0 && name != "resnet_block";
  const double train_tol = deep ? 1e-3 : 1e-5, stats_tol = deep ? 1e-3 : 1e-6;
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
    EXPECT_LE(max_rel_error(y_train, io.at("output_train")), train_tol) << name;
    StateDict after = model->state_dict();
    for (auto& [k, t] : io) {
      if (k.rfind("after_train.", 0) != 0) continue;
      const std::string key = k.substr(std::string("after_train.").size());
      EXPECT_LE(max_rel_error(after.at(key), t), stats_tol) << key;
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

INSTANTIATE_TEST_SUITE_P(Models, PyTorchInterop, ::testing::Values("resnet_block", "small_cnn", "resnet18", "resnet50", "resnext50_32x4d"));

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

// ---- learning-rate schedules and gradient clipping, against PyTorch's (schedules.json) ----
#include <nlohmann/json.hpp>

namespace {
nlohmann::json schedules() {
  std::ifstream f(dir() + "/schedules.json");
  return nlohmann::json::parse(f);
}
struct TwoGroups {
  Tensor p1 = zeros({1}, {.requires_grad = true}), p2 = zeros({1}, {.requires_grad = true});
  optim::SGD opt{std::vector<optim::ParamGroup<optim::SGDOptions>>{{{p1}, optim::SGDOptions{.lr = 0.1}},
                                                                   {{p2}, optim::SGDOptions{.lr = 0.02}}},
                 optim::SGDOptions{.lr = 0.1}};
};
void expect_schedule(const nlohmann::json& want, optim::Optimizer& opt, optim::LRScheduler& s, const std::string& name) {
  ASSERT_EQ(want.size(), 31u);
  for (size_t step = 0; step < want.size(); ++step) {
    if (step > 0) {
      opt.step();
      s.step();
    }
    for (size_t g = 0; g < 2; ++g) {
      const double w = want[step][g].get<double>();
      EXPECT_NEAR(opt.lr(g), w, 1e-12 * std::max(1.0, std::abs(w))) << name << " step " << step << " group " << g;
    }
  }
}
}  // namespace

TEST(PyTorchSchedules, LearningRatesMatchPyTorchStepForStep) {
  if (dir().empty()) GTEST_SKIP() << "NNKIT_INTEROP_DIR not set";
  nlohmann::json j = schedules();
  {
    TwoGroups t;
    optim::StepLR s(t.opt, 7, 0.5);
    expect_schedule(j["StepLR"], t.opt, s, "StepLR");
  }
  {
    TwoGroups t;
    optim::MultiStepLR s(t.opt, {3, 10, 20}, 0.3);
    expect_schedule(j["MultiStepLR"], t.opt, s, "MultiStepLR");
  }
  {
    TwoGroups t;
    optim::CosineAnnealingLR s(t.opt, 30, 0.001);
    expect_schedule(j["CosineAnnealingLR"], t.opt, s, "CosineAnnealingLR");
  }
  {
    TwoGroups t;
    optim::LinearLR s(t.opt, 0.25, 1.0, 8);
    expect_schedule(j["LinearLR"], t.opt, s, "LinearLR");
  }
  {
    TwoGroups t;
    optim::OneCycleLR s(t.opt, {.max_lrs = {0.5, 0.1}, .total_steps = 31, .cycle_momentum = false});
    expect_schedule(j["OneCycleLR"], t.opt, s, "OneCycleLR");
  }
  {
    TwoGroups t;
    optim::OneCycleLR s(t.opt, {.max_lrs = {0.5, 0.1}, .total_steps = 31, .cos_anneal = false, .three_phase = true,
                                .cycle_momentum = false});
    expect_schedule(j["OneCycleLR_three_phase_linear"], t.opt, s, "OneCycleLR three-phase linear");
  }
  {
    TwoGroups t;
    auto warmup = std::make_shared<optim::LinearLR>(t.opt, 0.1, 1.0, 5);
    auto cosine = std::make_shared<optim::CosineAnnealingLR>(t.opt, 25);
    optim::SequentialLR s(t.opt, {warmup, cosine}, {5});
    expect_schedule(j["Warmup_then_cosine"], t.opt, s, "LinearLR warmup then cosine");
  }
}

TEST(PyTorchSchedules, OneCycleCyclesMomentumLikePyTorch) {
  if (dir().empty()) GTEST_SKIP() << "NNKIT_INTEROP_DIR not set";
  nlohmann::json j = schedules();
  Tensor p = zeros({1}, {.requires_grad = true});
  optim::SGD sgd({p}, {.lr = 0.1, .momentum = 0.9});
  optim::Adam adam({p}, {.lr = 0.1});
  optim::OneCycleLR s1(sgd, {.max_lr = 0.3, .total_steps = 21});
  optim::OneCycleLR s2(adam, {.max_lr = 0.3, .total_steps = 21});
  for (size_t step = 0; step < 21; ++step) {
    if (step > 0) {
      s1.step();
      s2.step();
    }
    auto want_sgd = j["OneCycleLR_momentum_sgd"][step], want_adam = j["OneCycleLR_momentum_adam"][step];
    EXPECT_NEAR(sgd.lr(), want_sgd[0].get<double>(), 1e-12) << step;
    EXPECT_NEAR(*sgd.momentum(), want_sgd[1].get<double>(), 1e-12) << step;
    EXPECT_NEAR(adam.lr(), want_adam[0].get<double>(), 1e-12) << step;
    EXPECT_NEAR(adam.options().beta1, want_adam[1].get<double>(), 1e-12) << step;
  }
}

TEST(PyTorchSchedules, ClipGradNormMatchesPyTorch) {
  if (dir().empty()) GTEST_SKIP() << "NNKIT_INTEROP_DIR not set";
  nlohmann::json j = schedules()["clip_grad_norm"];
  for (auto& [norm_key, result] : j["results"].items()) {
    const double norm_type = norm_key == "inf" ? INFINITY : std::stod(norm_key);
    TensorList ps = {zeros({3, 4}, {.requires_grad = true}), zeros({5}, {.requires_grad = true})};
    for (size_t i = 0; i < 2; ++i)
      ps[i].set_grad(from_vector(j["grads"][i].get<std::vector<float>>(), ps[i].sizes()));
    double total = optim::clip_grad_norm_(ps, 1.5, norm_type);
    EXPECT_NEAR(total, result["total"].get<double>(), 1e-5 * result["total"].get<double>()) << norm_key;
    for (size_t i = 0; i < 2; ++i) {
      auto want = result["grads"][i].get<std::vector<float>>();
      auto got = ps[i].grad().to_vector<float>();
      ASSERT_EQ(got.size(), want.size());
      for (size_t k = 0; k < got.size(); ++k) EXPECT_NEAR(got[k], want[k], 1e-6) << norm_key;
    }
  }
}
