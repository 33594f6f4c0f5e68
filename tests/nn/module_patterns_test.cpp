// The module-design guide's patterns and pitfalls, one test each: Identity instead of an empty
// slot, hooks on Sequential by index and by name, in-place changes after capture, hooks removed
// while forward or backward runs, buffers that move and save, partial loads, multi-input and
// multi-output modules under hooks, gradient inspection, the construction guard rails.
#include <gtest/gtest.h>

#include "test_util.h"

#include <nnkit/nnkit.h>
#include <string>
#include <vector>

using namespace nnkit;
namespace nn = nnkit::nn;

namespace {
using nnkit::test_util::error_of;

// Collects warnings for the lifetime of the object.
struct WarningCollector {
  std::vector<std::string> messages;
  WarningHandler previous;
  WarningCollector() {
    previous = set_warning_handler([this](std::string_view m) { messages.emplace_back(m); });
  }
  ~WarningCollector() { set_warning_handler(previous); }
};

// Two inputs, two outputs: (a + b, a * b).
struct SumAndProduct : nn::Module {
  TensorList forward_list(const TensorList& in) override { return {in[0] + in[1], in[0] * in[1]}; }
};

// A block with an optional projection: Identity when none is needed, never an empty slot.
struct Block : nn::Module {
  explicit Block(bool project) {
    body = register_module<nn::Linear>("body", 4, 4);
    skip = project ? register_module("skip", nn::Ptr<>(nn::make<nn::Linear>(4, 4, false)))
                   : register_module("skip", nn::Ptr<>(nn::make<nn::Identity>()));
  }
  Tensor forward(const Tensor& x) override { return body(x) + skip(x); }
  nn::Ptr<nn::Linear> body;
  nn::Ptr<> skip;
};
}  // namespace

TEST(ModulePatterns, IdentityIsAHookableSlot) {
  manual_seed(1);
  auto plain = nn::make<Block>(false);
  auto projected = nn::make<Block>(true);
  EXPECT_EQ(plain->skip->name(), "Identity");
  EXPECT_EQ(plain->named_parameters().keys(), (std::vector<std::string>{"body.weight", "body.bias"}));
  EXPECT_EQ(projected->named_parameters().keys(),
            (std::vector<std::string>{"body.weight", "body.bias", "skip.weight"}));
  Tensor x = randn({2, 4});
  int fired = 0;
  nn::ScopedHook h = plain->skip->register_forward_hook([&](nn::Module&, const TensorList& in, TensorList& out) {
    ++fired;
    EXPECT_TRUE(equal(in[0], out[0]));
  });
  Tensor y = plain(x);
  EXPECT_EQ(fired, 1);
  EXPECT_TRUE(allclose(y, plain->body->forward(x) + x));
  EXPECT_NE(plain->repr().find("(skip): Identity()"), std::string::npos) << plain->repr();
}

TEST(ModulePatterns, SequentialHooksByIndexAndByName) {
  manual_seed(2);
  auto named = nn::make<nn::Sequential>(std::vector<std::pair<std::string, nn::Ptr<>>>{
      {"fc", nn::make<nn::Linear>(3, 5)}, {"act", nn::make<nn::ReLU>()}, {"out", nn::make<nn::Linear>(5, 2)}});
  EXPECT_EQ(named->named_parameters().keys(),
            (std::vector<std::string>{"fc.weight", "fc.bias", "out.weight", "out.bias"}));
  // By index and by name reach the same module.
  EXPECT_EQ(&named->at(1), &named->get_submodule("act"));
  EXPECT_EQ(named->at<nn::Linear>(2).options().out_features, 2);
  EXPECT_NE(error_of([&] { named->at<nn::Linear>(1); }).find("is a ReLU, not the requested type"), std::string::npos);
  EXPECT_NE(error_of([&] { named->at(3); }).find("3"), std::string::npos);
  Tensor captured;
  nn::ScopedHook h = named->get_submodule("act").register_forward_hook(
      [&](nn::Module&, const TensorList&, TensorList& out) { captured = out[0].detach(); });
  Tensor x = randn({4, 3});
  named(x);
  ASSERT_TRUE(captured.defined());
  EXPECT_TRUE(allclose(captured, named->at(0)(x).relu()));
  EXPECT_GE(captured.min().item<float>(), 0.f);
  // Indexed nesting: "1.0" in a Sequential of Sequentials.
  auto nested = nn::make<nn::Sequential>(nn::make<nn::Identity>(),
                                         nn::make<nn::Sequential>(nn::make<nn::Linear>(2, 2)));
  EXPECT_EQ(nested->named_parameters().keys(), (std::vector<std::string>{"1.0.weight", "1.0.bias"}));
  EXPECT_EQ(&nested->get_submodule("1.0"), &nested->at<nn::Sequential>(1).at(0));
}

TEST(ModulePatterns, InPlaceChangeAfterCaptureIsReported) {
  manual_seed(3);
  auto model = nn::make<nn::Sequential>(nn::make<nn::Linear>(3, 3), nn::make<nn::ReLU>());
  EXPECT_NE(error_of([&] { nn::FeatureExtractor bad(*model, {"0", "7"}); }).find("'7'"), std::string::npos);
  nn::FeatureExtractor shared(*model, {"0"}, nn::Capture::Detach);
  nn::FeatureExtractor cloned(*model, {"0"}, nn::Capture::DetachClone);
  Tensor x = randn({2, 3});
  Tensor out0;
  nn::ScopedHook keep = model->at(0).register_forward_hook(
      [&](nn::Module&, const TensorList&, TensorList& out) { out0 = out[0]; });
  {
    auto a = shared.capture();
    auto b = cloned.capture();
    NoGradGuard g;
    model(x);
  }
  Tensor before = cloned.features().at("0").clone();
  WarningCollector warnings;
  EXPECT_TRUE(equal(shared.features().at("0"), before));
  EXPECT_TRUE(warnings.messages.empty());
  {
    NoGradGuard g;
    out0.mul_(0.0);  // an in-place change to the activation after capture
  }
  const Tensor& seen = shared.features().at("0");
  ASSERT_EQ(warnings.messages.size(), 1u);
  EXPECT_NE(warnings.messages[0].find("feature '0' was modified in place"), std::string::npos);
  EXPECT_NE(warnings.messages[0].find("DetachClone"), std::string::npos);
  EXPECT_EQ(seen.abs().sum().item<float>(), 0.f);  // Detach shares memory
  shared.features();
  EXPECT_EQ(warnings.messages.size(), 1u);  // once per change
  EXPECT_TRUE(equal(cloned.features().at("0"), before));  // DetachClone does not
  // Hooks are gone once the capture scope ends.
  model(x);
  EXPECT_EQ(shared.features().at("0").abs().sum().item<float>(), 0.f);
}

TEST(ModulePatterns, HooksRemovedDuringForwardAndBackward) {
  manual_seed(4);
  auto lin = nn::make<nn::Linear>(3, 3);
  Tensor x = randn({2, 3}, {.requires_grad = true});
  int pre_calls = 0, fwd_calls = 0, bwd_calls = 0, other_calls = 0;
  nn::HookHandle pre, fwd, bwd, other;
  pre = lin->register_forward_pre_hook([&](nn::Module&, TensorList&) {
    ++pre_calls;
    pre.remove();
    pre.remove();  // idempotent
  });
  // A hook that removes a later hook: the later one does not fire in this call.
  fwd = lin->register_forward_hook([&](nn::Module&, const TensorList&, TensorList&) {
    ++fwd_calls;
    other.remove();
  });
  other = lin->register_forward_hook([&](nn::Module&, const TensorList&, TensorList&) { ++other_calls; });
  bwd = lin->register_full_backward_hook([&](nn::Module&, TensorList&, const TensorList&) {
    ++bwd_calls;
    bwd.remove();
  });
  lin(x).sum().backward();
  lin(x).sum().backward();
  EXPECT_EQ(pre_calls, 1);
  EXPECT_EQ(fwd_calls, 2);
  EXPECT_EQ(other_calls, 0);
  EXPECT_EQ(bwd_calls, 1);
  fwd.remove();
  EXPECT_FALSE(fwd.active());
}

TEST(ModulePatterns, BackwardPreHookReplacesOutputGradient) {
  manual_seed(5);
  auto lin = nn::make<nn::Linear>(3, 2);
  Tensor x = randn({4, 3}, {.requires_grad = true});
  nn::ScopedHook h = lin->register_full_backward_pre_hook([](nn::Module&, TensorList& gout) { gout[0] = gout[0] * 3; });
  lin(x).sum().backward();
  Tensor expected = ones({4, 2}).mm(lin->weight.detach()) * 3;
  EXPECT_TRUE(allclose(x.grad(), expected, 1e-5, 1e-6));
  EXPECT_TRUE(allclose(lin->bias.grad(), full({2}, 12.0), 1e-5, 1e-6));
}

TEST(ModulePatterns, MultiInputMultiOutputModulesRunEveryHook) {
  auto m = nn::make<SumAndProduct>();
  Tensor a = randn({3}, {.requires_grad = true}), b = randn({3}, {.requires_grad = true});
  std::vector<std::string> events;
  nn::ScopedHook h1 = m->register_forward_pre_hook([&](nn::Module&, TensorList& in) {
    events.push_back("pre:" + std::to_string(in.size()));
  });
  nn::ScopedHook h2 = m->register_forward_hook([&](nn::Module&, const TensorList& in, TensorList& out) {
    events.push_back("fwd:" + std::to_string(in.size()) + "->" + std::to_string(out.size()));
  });
  TensorList gin_seen, gout_seen;
  nn::ScopedHook h3 = m->register_full_backward_hook([&](nn::Module&, TensorList& gin, const TensorList& gout) {
    events.push_back("bwd");
    gin_seen = gin;
    gout_seen = gout;
  });
  TensorList out = m(a, b);
  ASSERT_EQ(out.size(), 2u);
  (out[0].sum() + out[1].sum() * 2.0).backward();
  EXPECT_EQ(events, (std::vector<std::string>{"pre:2", "fwd:2->2", "bwd"}));
  ASSERT_EQ(gin_seen.size(), 2u);
  ASSERT_EQ(gout_seen.size(), 2u);
  EXPECT_TRUE(allclose(gout_seen[1], full({3}, 2.0)));
  EXPECT_TRUE(allclose(gin_seen[0], 1.0 + b.detach() * 2.0, 1e-6, 1e-6));
  EXPECT_TRUE(allclose(a.grad(), 1.0 + b.detach() * 2.0, 1e-6, 1e-6));
}

TEST(ModulePatterns, GlobalHooksSeeEveryModuleAndGoAway) {
  auto seq = nn::make<nn::Sequential>(nn::make<nn::Linear>(2, 2), nn::make<nn::Tanh>());
  Tensor x = randn({1, 2}, {.requires_grad = true});
  std::vector<std::string> pre_names, bwd_names;
  {
    nn::ScopedHook p = nn::register_module_forward_pre_hook([&](nn::Module& m, TensorList&) { pre_names.push_back(m.name()); });
    nn::ScopedHook b = nn::register_module_full_backward_hook(
        [&](nn::Module& m, TensorList&, const TensorList&) { bwd_names.push_back(m.name()); });
    seq(x).sum().backward();
  }
  EXPECT_EQ(pre_names, (std::vector<std::string>{"Sequential", "Linear", "Tanh"}));
  EXPECT_EQ(bwd_names.size(), 3u);
  pre_names.clear();
  seq(x);
  EXPECT_TRUE(pre_names.empty());
}

TEST(ModulePatterns, BuffersMoveAndSave) {
  struct Stats : nn::Module {
    Stats() {
      lin = register_module<nn::Linear>("lin", 2, 2);
      mean = register_buffer("mean", zeros({2}));
      count = register_buffer("count", zeros({}, {.dtype = kInt64}));
      scratch = register_buffer("scratch", zeros({2}), /*persistent=*/false);
    }
    Tensor forward(const Tensor& x) override {
      if (is_training()) {
        NoGradGuard g;
        mean.mul_(0.9).add_(x.mean(0) * 0.1);
        count.add_(1);
      }
      return lin(x - mean);
    }
    nn::Ptr<nn::Linear> lin;
    Tensor mean, count, scratch;
  };
  auto s = nn::make<Stats>();
  Tensor mean_handle = s->mean;
  s(randn({5, 2}));
  s->to(kFloat64);
  EXPECT_EQ(mean_handle.dtype(), kFloat64);
  EXPECT_EQ(s->scratch.dtype(), kFloat64);  // non-persistent buffers move too
  EXPECT_EQ(s->count.dtype(), kInt64);
  StateDict sd = s->state_dict();
  EXPECT_EQ(sd.keys(), (std::vector<std::string>{"mean", "count", "lin.weight", "lin.bias"}));
  EXPECT_EQ(sd.at("count").item<int64_t>(), 1);
  auto fresh = nn::make<Stats>();
  fresh->to(kFloat64);
  fresh->load_state_dict(sd);
  EXPECT_TRUE(equal(fresh->mean, s->mean));
  EXPECT_EQ(fresh->count.item<int64_t>(), 1);
  // Buffers are not parameters: an optimizer never sees them.
  EXPECT_EQ(s->parameters().size(), 2u);
  s->eval();
  Tensor before = s->mean.clone();
  s(randn({5, 2}, {.dtype = kFloat64}));
  EXPECT_TRUE(equal(before, s->mean));
}

TEST(ModulePatterns, PartialLoadsAtTheModuleLevel) {
  manual_seed(6);
  auto big = nn::make<nn::Sequential>(std::vector<std::pair<std::string, nn::Ptr<>>>{
      {"backbone", nn::make<nn::Linear>(4, 4)}, {"head", nn::make<nn::Linear>(4, 3)}});
  auto other = nn::make<nn::Linear>(4, 4);
  // A submodule loads its own state dict (keys relative to it).
  big->get_submodule("backbone").load_state_dict(other->state_dict());
  EXPECT_TRUE(equal(big->at<nn::Linear>(0).weight, other->weight));
  // Non-strict: the checkpoint of another head loads the backbone, reports the rest.
  StateDict ckpt = big->state_dict();
  ckpt.erase("head.bias");
  ckpt.insert("classifier.weight", zeros({1}));
  std::string e = error_of([&] { big->load_state_dict(ckpt); });
  EXPECT_NE(e.find("head.bias"), std::string::npos) << e;
  EXPECT_NE(e.find("classifier.weight"), std::string::npos) << e;
  nn::LoadResult r = big->load_state_dict(ckpt, {.strict = false});
  EXPECT_EQ(r.missing_keys, (std::vector<std::string>{"head.bias"}));
  EXPECT_EQ(r.unexpected_keys, (std::vector<std::string>{"classifier.weight"}));
  // A shape mismatch is an error even when not strict, and nothing changes.
  Tensor w = big->at<nn::Linear>(1).weight.clone();
  ckpt.at("backbone.weight") = zeros({4, 5});
  ckpt.at("head.weight") = zeros({3, 4});
  EXPECT_NE(error_of([&] { big->load_state_dict(ckpt, {.strict = false}); }).find("backbone.weight"), std::string::npos);
  EXPECT_TRUE(equal(w, big->at<nn::Linear>(1).weight));
}

TEST(ModulePatterns, ReplaceUnregisterFreezeReset) {
  manual_seed(7);
  struct Net : nn::Module {
    Net() {
      fc = register_module<nn::Linear>("fc", 3, 3);
      act = register_module("act", nn::Ptr<>(nn::make<nn::ReLU>()));
    }
    Tensor forward(const Tensor& x) override { return act(fc(x)); }
    nn::Ptr<nn::Linear> fc;
    nn::Ptr<> act;
  };
  auto net = nn::make<Net>();
  net->act = net->replace_module("act", nn::Ptr<>(nn::make<nn::GELU>()));
  EXPECT_EQ(net->get_submodule("act").name(), "GELU");
  EXPECT_NE(error_of([&] { net->replace_module("nope", nn::Ptr<>(nn::make<nn::ReLU>())); }).find("nope"),
            std::string::npos);
  net->requires_grad_(false);
  for (auto& p : net->parameters()) EXPECT_FALSE(p.requires_grad());
  net->requires_grad_(true);
  Tensor w = net->fc->weight.clone();
  net->reset_parameters();
  EXPECT_FALSE(equal(w, net->fc->weight));
  auto removed = net->unregister_module("act");
  EXPECT_EQ(removed->name(), "GELU");
  EXPECT_EQ(net->named_children().size(), 1u);
}

TEST(ModulePatterns, ParameterAndModuleDicts) {
  auto pd = nn::make<nn::ParameterDict>();
  pd->insert("alpha", ones({2}));
  pd->insert("beta", zeros({3}));
  EXPECT_EQ(pd->keys(), (std::vector<std::string>{"alpha", "beta"}));
  EXPECT_TRUE(pd->at("alpha").requires_grad());
  EXPECT_NE(error_of([&] { pd->at("gamma"); }).find("gamma"), std::string::npos);
  auto md = nn::make<nn::ModuleDict>(std::vector<std::pair<std::string, nn::Ptr<>>>{
      {"b", nn::make<nn::Linear>(1, 1)}, {"a", nn::make<nn::ReLU>()}});
  EXPECT_EQ(md->keys(), (std::vector<std::string>{"b", "a"}));  // insertion order, not sorted
  md->update("b", nn::make<nn::Tanh>());
  EXPECT_EQ(md->keys(), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(md->at("b").name(), "Tanh");
  EXPECT_TRUE(md->parameters().empty());
  EXPECT_NE(error_of([&] { md->insert("a", nn::make<nn::ReLU>()); }).find("already"), std::string::npos);
}

TEST(ModulePatterns, GradientInspectorFlagsVanishingAndExploding) {
  manual_seed(8);
  auto model = nn::make<nn::Sequential>(nn::make<nn::Linear>(4, 4), nn::make<nn::Linear>(4, 4));
  {
    NoGradGuard g;
    model->at<nn::Linear>(1).weight.fill_(1e5);  // makes the gradient into layer 0's output huge
  }
  nn::GradientInspector inspector(*model, {"0", "1"});
  {
    auto active = inspector.capture();
    model(randn({2, 4})).sum().backward();
  }
  ASSERT_EQ(inspector.stats().size(), 2u);
  const nn::GradStats& s0 = inspector.stats().at("0");
  const nn::GradStats& s1 = inspector.stats().at("1");
  EXPECT_TRUE(s0.exploding);
  EXPECT_FALSE(s1.exploding);  // d(sum)/d(output) is all ones
  EXPECT_DOUBLE_EQ(s1.mean, 1.0);
  EXPECT_DOUBLE_EQ(s1.max, 1.0);
  EXPECT_DOUBLE_EQ(s1.std, 0.0);
  EXPECT_EQ(inspector.flagged(), (std::vector<std::string>{"0"}));
  nn::GradientInspector tiny(*model, {"1"}, {.vanishing_below = 2.0});
  {
    auto active = tiny.capture();
    model(randn({2, 4})).sum().backward();
  }
  EXPECT_TRUE(tiny.stats().at("1").vanishing);
}

TEST(ModulePatterns, ModuleCreationInForwardCanBeAllowedInAScope) {
  struct Lazy : nn::Module {
    Tensor forward(const Tensor& x) override {
      nn::AllowModuleCreationInForward allow;
      auto scratch = nn::make<nn::Identity>();
      return scratch->forward(x);
    }
  };
  auto m = nn::make<Lazy>();
  Tensor x = ones({2});
  EXPECT_TRUE(equal(m(x), x));
}

TEST(ModulePatterns, EveryLayerRoundTripsThroughFiles) {
  // Each layer: save its state (safetensors bytes), load into a differently seeded twin, and
  // the twin's state and outputs must be identical.
  struct Case {
    std::string name;
    std::function<nn::Ptr<>()> make;
    Shape input;
  };
  std::vector<Case> cases = {
      {"Linear", [] { return nn::Ptr<>(nn::make<nn::Linear>(5, 3)); }, {2, 5}},
      {"Conv2d", [] { return nn::Ptr<>(nn::make<nn::Conv2d>(nn::Conv2d::Options{.in_channels = 2, .out_channels = 4, .kernel_size = 3, .padding = 1, .groups = 2})); }, {1, 2, 5, 5}},
      {"BatchNorm1d", [] { return nn::Ptr<>(nn::make<nn::BatchNorm1d>(3)); }, {4, 3}},
      {"BatchNorm2d", [] { return nn::Ptr<>(nn::make<nn::BatchNorm2d>(3)); }, {2, 3, 4, 4}},
      {"GroupNorm", [] { return nn::Ptr<>(nn::make<nn::GroupNorm>(2, 4)); }, {2, 4, 3, 3}},
      {"LayerNorm", [] { return nn::Ptr<>(nn::make<nn::LayerNorm>(Shape{4})); }, {3, 4}},
      {"Sequential", [] { return nn::Ptr<>(nn::make<nn::Sequential>(nn::make<nn::Linear>(4, 4), nn::make<nn::GELU>(), nn::make<nn::LayerNorm>(Shape{4}))); }, {2, 4}},
      {"Conv1d", [] { return nn::Ptr<>(nn::make<nn::Conv1d>(nn::Conv1d::Options{.in_channels = 2, .out_channels = 3, .kernel_size = 3, .padding = "same", .padding_mode = "reflect"})); }, {2, 2, 7}},
      {"ConvTranspose2d", [] { return nn::Ptr<>(nn::make<nn::ConvTranspose2d>(nn::ConvTranspose2d::Options{.in_channels = 2, .out_channels = 4, .kernel_size = 3, .stride = 2, .padding = 1, .output_padding = 1})); }, {1, 2, 4, 4}},
      {"InstanceNorm2d", [] { return nn::Ptr<>(nn::make<nn::InstanceNorm2d>(3, 1e-5, true)); }, {2, 3, 4, 4}},
      {"Embedding", [] { return nn::Ptr<>(nn::make<nn::Sequential>(nn::make<nn::Linear>(3, 4))); }, {2, 3}},
      {"MultiheadAttention", [] { return nn::Ptr<>(nn::make<nn::MultiheadAttention>(nn::MultiheadAttention::Options{.embed_dim = 4, .num_heads = 2, .batch_first = true})); }, {2, 3, 4}},
      {"Activations", [] { return nn::Ptr<>(nn::make<nn::Sequential>(nn::make<nn::LeakyReLU>(0.2), nn::make<nn::SiLU>(), nn::make<nn::Softmax>(1), nn::make<nn::Dropout2d>(0.0), nn::make<nn::Flatten>(), nn::make<nn::Unflatten>(1, Shape{2, 4}))); }, {1, 2, 2, 2}},
  };
  // Bilinear and Embedding take other inputs: checked through their state alone, plus a call.
  {
    manual_seed(1);
    auto a = nn::make<nn::Bilinear>(3, 4, 2);
    auto e = nn::make<nn::Embedding>(nn::Embedding::Options{.num_embeddings = 6, .embedding_dim = 3, .padding_idx = 2});
    manual_seed(2);
    auto b = nn::make<nn::Bilinear>(3, 4, 2);
    auto f = nn::make<nn::Embedding>(nn::Embedding::Options{.num_embeddings = 6, .embedding_dim = 3, .padding_idx = 2});
    b->load_state_dict(load_safetensors_bytes(save_safetensors_bytes(a->state_dict())));
    f->load_state_dict(load_safetensors_bytes(save_safetensors_bytes(e->state_dict())));
    Tensor x1 = randn({2, 3}), x2 = randn({2, 4}), idx = from_vector(std::vector<int64_t>{0, 5, 2});
    EXPECT_TRUE(equal(a->forward(x1, x2), b->forward(x1, x2)));
    EXPECT_TRUE(equal(e(idx), f(idx)));
  }
  for (auto& c : cases) {
    manual_seed(1);
    nn::Ptr<> a = c.make();
    manual_seed(2);
    nn::Ptr<> b = c.make();
    // Give buffers non-default values through a training step.
    a->train();
    auto call = [&c](nn::Ptr<>& m, const Tensor& x) {
      if (c.name == "MultiheadAttention") return m(TensorList{x, x, x})[0];
      return m(x);
    };
    {
      NoGradGuard g;
      call(a, randn(c.input));
    }
    StateDict sd = load_safetensors_bytes(save_safetensors_bytes(a->state_dict()));
    b->load_state_dict(sd);
    for (auto& [k, t] : a->state_dict()) {
      EXPECT_TRUE(equal(t, b->state_dict().at(k))) << c.name << " " << k;
      EXPECT_EQ(t.dtype(), b->state_dict().at(k).dtype()) << c.name << " " << k;
    }
    a->eval();
    b->eval();
    Tensor x = randn(c.input);
    NoGradGuard g;
    EXPECT_TRUE(equal(call(a, x), call(b, x))) << c.name;
  }
}
