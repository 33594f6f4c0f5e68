// The module contract: registries and names, containers, state, hooks, guard rails, state dicts.
#include <gtest/gtest.h>

#include "test_util.h"

#include <cstdio>
#include <nnkit/nnkit.h>

using namespace nnkit;
namespace nn = nnkit::nn;

namespace {
using nnkit::test_util::error_of;

struct Net : nn::Module {
  Net() {
    encoder = register_module<nn::Linear>("encoder", 4, 8);
    layers = register_module("layers", nn::make<nn::ModuleList>());
    for (int i = 0; i < 2; ++i) layers->append(nn::make<nn::Sequential>(nn::make<nn::Linear>(8, 8), nn::make<nn::ReLU>()));
    scale = register_parameter("scale", ones({1}));
    steps = register_buffer("steps", zeros({}, {.dtype = kInt64}));
    cache = register_buffer("cache", zeros({2}), /*persistent=*/false);
    seen = int(parameters().size());  // enumeration works inside the constructor
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = encoder(x);
    for (nn::Module& l : *layers) h = l(h);
    return h * scale;
  }
  nn::Ptr<nn::Linear> encoder;
  nn::Ptr<nn::ModuleList> layers;
  Tensor scale, steps, cache;
  int seen = 0;
};
}  // namespace

TEST(ModuleBasics, PyTorchNames) {
  auto net = nn::make<Net>();
  EXPECT_EQ(net->seen, 7);
  EXPECT_EQ(net->named_parameters().keys(),
            (std::vector<std::string>{"scale", "encoder.weight", "encoder.bias", "layers.0.0.weight", "layers.0.0.bias",
                                      "layers.1.0.weight", "layers.1.0.bias"}));
  EXPECT_EQ(net->named_buffers().keys(), (std::vector<std::string>{"steps", "cache"}));
  EXPECT_EQ(net->state_dict().keys().size(), 8u);  // non-persistent buffer left out
  std::vector<std::string> names;
  for (auto& [name, m] : net->named_modules()) names.push_back(name + ":" + m.name());
  EXPECT_EQ(names, (std::vector<std::string>{":Net", "encoder:Linear", "layers:ModuleList", "layers.0:Sequential",
                                             "layers.0.0:Linear", "layers.0.1:ReLU", "layers.1:Sequential",
                                             "layers.1.0:Linear", "layers.1.1:ReLU"}));
  EXPECT_EQ(&net->get_submodule("layers.1.0"), &net->layers->at<nn::Sequential>(1).at(0));
  EXPECT_NE(error_of([&] { net->get_submodule("layers.5"); }).find("no child '5'"), std::string::npos);
}

TEST(ModuleBasics, RegistrationErrors) {
  struct M : nn::Module {
    using nn::Module::register_module;
  } m;
  EXPECT_NE(error_of([&] { m.register_module("skip", nn::Ptr<>{}); }).find("use nn::Identity()"), std::string::npos);
  EXPECT_NE(error_of([&] { m.register_parameter("a.b", ones({1})); }).find("must not contain '.'"), std::string::npos);
  EXPECT_NE(error_of([&] { m.register_buffer("", ones({1})); }).find("non-empty"), std::string::npos);
  m.register_parameter("w", ones({1}));
  EXPECT_NE(error_of([&] { m.register_buffer("w", ones({1})); }).find("already exists"), std::string::npos);
}

TEST(ModuleBasics, StateMovesInPlace) {
  auto net = nn::make<Net>();
  Tensor w = net->encoder->weight;
  net->to(kFloat64);
  EXPECT_EQ(w.dtype(), kFloat64);  // the handle taken before sees the move
  EXPECT_EQ(net->steps.dtype(), kInt64);  // integer buffers keep their dtype
  net->eval();
  EXPECT_FALSE(net->layers->at(0).is_training());
  net->train();
  EXPECT_TRUE(net->layers->at(1).is_training());
  Tensor y = net(randn({2, 4}, {.dtype = kFloat64}));
  y.sum().backward();
  EXPECT_TRUE(w.grad().defined());
  net->zero_grad(false);
  EXPECT_EQ(w.grad().abs().sum().item<double>(), 0.0);
  net->zero_grad();
  EXPECT_FALSE(w.grad().defined());
}

TEST(ModuleBasics, CloneIsDeep) {
  auto seq = nn::make<nn::Sequential>(nn::make<nn::Linear>(3, 3), nn::make<nn::ReLU>());
  auto copy = seq->clone().as<nn::Sequential>();
  ASSERT_TRUE(copy);
  Tensor a = seq->parameters()[0], b = copy->parameters()[0];
  EXPECT_TRUE(equal(a, b));
  EXPECT_FALSE(a.is_alias_of(b));
  {
    NoGradGuard g;
    b.add_(1.0);
  }
  EXPECT_FALSE(equal(a, b));
}

TEST(ModuleBasics, ReprMatchesPyTorch) {
  // repr(nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Sequential(nn.Linear(20, 5, bias=False)))) in PyTorch 1.13.
  auto m = nn::make<nn::Sequential>(nn::make<nn::Linear>(10, 20), nn::make<nn::ReLU>(),
                                    nn::make<nn::Sequential>(nn::make<nn::Linear>(20, 5, false)));
  EXPECT_EQ(m->repr(),
            "Sequential(\n"
            "  (0): Linear(in_features=10, out_features=20, bias=True)\n"
            "  (1): ReLU()\n"
            "  (2): Sequential(\n"
            "    (0): Linear(in_features=20, out_features=5, bias=False)\n"
            "  )\n"
            ")");
  EXPECT_EQ(nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 64, .out_channels = 128, .kernel_size = 3,
                                                     .stride = 2, .padding = 1, .bias = false})->repr(),
            "Conv2d(64, 128, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)");
  EXPECT_EQ(nn::make<nn::BatchNorm2d>(16)->repr(),
            "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
  EXPECT_EQ(nn::make<nn::MaxPool2d>(2)->repr(), "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)");
}

TEST(ModuleBasics, ContainersNameAndIndex) {
  auto list = nn::make<nn::ModuleList>(nn::make<nn::Linear>(2, 2), nn::make<nn::Linear>(2, 3));
  list->insert(1, nn::make<nn::ReLU>());
  EXPECT_EQ(list->size(), 3u);
  EXPECT_EQ(list->at(1).name(), "ReLU");
  EXPECT_EQ(list->named_parameters().keys(), (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(list->at(-1).as<nn::Linear>()->options().out_features, 3);
  auto dict = nn::make<nn::ModuleDict>();
  dict->insert("cls", nn::make<nn::Linear>(2, 5));
  dict->insert("reg", nn::make<nn::Linear>(2, 1));
  EXPECT_TRUE(dict->contains("cls"));
  auto popped = dict->pop("cls");
  EXPECT_FALSE(dict->contains("cls"));
  EXPECT_EQ(dict->named_parameters().keys(), (std::vector<std::string>{"reg.weight", "reg.bias"}));
  EXPECT_NE(error_of([&] { dict->at("cls"); }).find("keys: reg"), std::string::npos);
  auto pl = nn::make<nn::ParameterList>(TensorList{ones({2}), zeros({3})});
  EXPECT_EQ(pl->named_parameters().keys(), (std::vector<std::string>{"0", "1"}));
}

TEST(ModuleBasics, ForwardHooksReplaceAndRemove) {
  auto seq = nn::make<nn::Sequential>(nn::make<nn::Linear>(3, 3), nn::make<nn::ReLU>());
  Tensor x = randn({2, 3});
  std::vector<int> order;
  nn::HookHandle h1 = seq->at(1).register_forward_hook([&](nn::Module&, const TensorList&, TensorList& out) {
    order.push_back(1);
    out[0] = out[0] * 0 + 7;
  });
  nn::HookHandle h0 = seq->at(1).register_forward_hook([&](nn::Module&, const TensorList&, TensorList&) { order.push_back(0); },
                                                       /*prepend=*/true);
  nn::HookHandle pre = seq->at(0).register_forward_pre_hook([](nn::Module&, TensorList& in) { in[0] = in[0] * 0; });
  Tensor y = seq(x);
  EXPECT_EQ(order, (std::vector<int>{0, 1}));
  EXPECT_EQ(y.sum().item<float>(), 42.f);
  h1.remove();
  h0.remove();
  pre.remove();
  EXPECT_TRUE(allclose(seq(x), seq->forward(x)));
  int global_calls = 0;
  {
    nn::ScopedHook g = nn::register_module_forward_hook([&](nn::Module&, const TensorList&, TensorList&) { ++global_calls; });
    seq(x);
  }
  seq(x);
  EXPECT_EQ(global_calls, 3);  // Sequential + its two children, only while the scope lived
}

TEST(ModuleBasics, FullBackwardHooksSeeModuleGradients) {
  manual_seed(5);
  auto lin = nn::make<nn::Linear>(3, 2);
  Tensor x = randn({4, 3}, {.requires_grad = true});
  TensorList seen_in, seen_out;
  nn::HookHandle h = lin->register_full_backward_hook([&](nn::Module&, TensorList& gin, const TensorList& gout) {
    seen_in = gin;
    seen_out = gout;
    gin[0] = gin[0] * 2;  // replace the input gradient
  });
  Tensor y = lin(x);
  Tensor upstream = randn({4, 2});
  y.backward(upstream);
  ASSERT_EQ(seen_out.size(), 1u);
  EXPECT_TRUE(allclose(seen_out[0], upstream));
  Tensor expected_gin = upstream.mm(lin->weight.detach());
  EXPECT_TRUE(allclose(seen_in[0], expected_gin, 1e-5, 1e-6));
  EXPECT_TRUE(allclose(x.grad(), expected_gin * 2, 1e-5, 1e-6));
}

TEST(ModuleBasics, GuardRails) {
  struct MakesInForward : nn::Module {
    Tensor forward(const Tensor& x) override { return nn::make<nn::Linear>(2, 2)->forward(x); }
  };
  auto bad = nn::make<MakesInForward>();
  EXPECT_NE(error_of([&] { bad(ones({1, 2})); }).find("constructed inside the forward()"), std::string::npos);
  struct VectorOfLayers : nn::Module {
    VectorOfLayers() { hidden.push_back(nn::make<nn::Linear>(2, 2)); }
    Tensor forward(const Tensor& x) override { return hidden[0](x); }
    std::vector<nn::Ptr<nn::Linear>> hidden;  // invisible to parameters(): diagnosed
  };
  auto v = nn::make<VectorOfLayers>();
  EXPECT_NE(error_of([&] { v(ones({1, 2})); }).find("never registered (Linear)"), std::string::npos);
  struct Wrapper : nn::Module {
    Wrapper() { encoder = register_module<nn::Linear>("encoder", 2, 2); }
    Tensor forward(const Tensor& x) override { return encoder(x); }
    nn::Ptr<nn::Linear> encoder;
  };
  auto w = nn::make<Wrapper>();
  std::string e = error_of([&] { w(ones({1, 2}, {.dtype = kFloat64})); });
  EXPECT_NE(e.find("module 'encoder' (Linear)"), std::string::npos) << e;
  EXPECT_NE(e.find("float64"), std::string::npos) << e;
  EXPECT_NE(e.find("float32"), std::string::npos) << e;
}

TEST(ModuleBasics, StateDictRoundTripAndValidation) {
  auto a = nn::make<Net>(), b = nn::make<Net>();
  std::string path = ::testing::TempDir() + "nnkit_net.safetensors";
  nnkit::save(a->state_dict(), path);
  auto r = b->load_state_dict(nnkit::load(path));
  EXPECT_TRUE(r.missing_keys.empty() && r.unexpected_keys.empty());
  for (auto& [k, t] : a->state_dict()) EXPECT_TRUE(equal(t, b->state_dict().at(k))) << k;
  StateDict sd = a->state_dict();
  sd.at("encoder.weight") = zeros({3, 3});
  Tensor before = b->scale.clone();
  {
    NoGradGuard g;
    sd.at("scale").fill_(5);
  }
  std::string e = error_of([&] { b->load_state_dict(sd); });
  EXPECT_NE(e.find("size mismatch for 'encoder.weight'"), std::string::npos) << e;
  EXPECT_TRUE(equal(before, b->scale));  // a failed load changes nothing
  std::remove(path.c_str());
}

TEST(ModuleBasics, SafetensorsRejectsHostileBytes) {
  EXPECT_NE(error_of([] { load_safetensors_bytes("abc"); }).find("too short"), std::string::npos);
  std::string huge(8, '\xff');
  EXPECT_NE(error_of([&] { load_safetensors_bytes(huge); }).find("exceeds"), std::string::npos);
  auto with_header = [](const std::string& h, const std::string& data) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[size_t(i)] = char((h.size() >> (8 * i)) & 0xff);
    return s + h + data;
  };
  EXPECT_NE(error_of([&] { load_safetensors_bytes(with_header("{nope", "")); }).find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of([&] { load_safetensors_bytes(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", std::string(8, '\0'))); })
                .find("outside the data section"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_safetensors_bytes(with_header(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0'))); })
                .find("need"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_safetensors_bytes(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(12, '\0'))); })
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_safetensors_bytes(with_header(R"({"a":{"dtype":"X9","shape":[],"data_offsets":[0,0]}})", "")); }).find("X9"),
            std::string::npos);
  // A valid unpadded file (as MLX writes) loads.
  StateDict sd = load_safetensors_bytes(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')));
  EXPECT_EQ(sd.at("a").sizes(), (std::vector<int64_t>{2}));
}
