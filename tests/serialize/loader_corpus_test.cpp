// The committed fuzz corpus (tests/fuzz/corpus, written by tests/fuzz/make_corpus.py) as
// expectations: valid files load with the right contents, each malformed one is an
// nnkit::Error that says what is wrong.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nnkit/nnkit.h>
#include <sstream>

using namespace nnkit;

namespace {
std::string corpus(const std::string& kind, const std::string& name) {
  auto path = std::filesystem::path(NNKIT_CORPUS_DIR) / kind / name;
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}
}  // namespace

TEST(LoaderCorpus, SafetensorsValidAndMalformed) {
  StateDict a = load_safetensors_bytes(corpus("safetensors", "valid_f32"));
  EXPECT_EQ(a.at("w").to_vector<float>(), (std::vector<float>{1.f, -2.f, 3.5f, .25f}));
  StateDict b = load_safetensors_bytes(corpus("safetensors", "valid_mixed_unpadded"));
  EXPECT_EQ(b.at("b").item<int64_t>(), 7);
  EXPECT_EQ(b.at("c").dtype(), kBool);
  EXPECT_EQ(b.at("e").sizes(), (std::vector<int64_t>{0, 4}));
  const std::pair<const char*, const char*> bad[] = {
      {"too_short", "too short"},          {"huge_header_length", "exceeds"},
      {"bad_json", "not valid JSON"},      {"offsets_outside", "outside the data section"},
      {"size_mismatch", "need"},           {"overlap", "overlap"},
      {"unknown_dtype", "X9"},             {"huge_shape", "a"},
      {"negative_shape", "a"}};
  for (auto [name, expect] : bad) {
    std::string e = error_of([&] { load_safetensors_bytes(corpus("safetensors", name)); });
    EXPECT_NE(e, "<no error>") << name;
    EXPECT_NE(e.find(expect), std::string::npos) << name << ": " << e;
  }
}

TEST(LoaderCorpus, PyTorchValidAndMalformed) {
  StateDict a = load_pytorch_bytes(corpus("pytorch", "valid_linear_bn"));
  EXPECT_EQ(a.keys(), (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                                "1.running_var", "1.num_batches_tracked"}));
  EXPECT_EQ(a.at("1.num_batches_tracked").dtype(), kInt64);
  StateDict z = load_pytorch_bytes(corpus("pytorch", "zip64"));  // the same entries, zip64 records
  for (auto& [k, t] : a) EXPECT_TRUE(equal(t, z.at(k))) << k;
  // A transposed (strided) float64 view and a bool tensor come out right and contiguous.
  StateDict s = load_pytorch_bytes(corpus("pytorch", "valid_strided_bool"));
  EXPECT_EQ(s.at("t").to_vector<double>(), (std::vector<double>{0, 3, 1, 4, 2, 5}));
  EXPECT_TRUE(s.at("t").is_contiguous());
  EXPECT_EQ(s.at("flag").to_vector<bool>(), (std::vector<bool>{true, false}));
  StateDict ex = load_pytorch_bytes(corpus("pytorch", "expanded_view"));
  EXPECT_EQ(ex.at("w").sizes(), (std::vector<int64_t>{1000, 1000}));
  EXPECT_TRUE(ex.at("w").is_contiguous());
  const std::pair<const char*, const char*> bad[] = {
      {"expanded_huge", "too large for its storage"},
      {"truncated_half", "[load_pytorch]"},
      {"not_zip", "not a PyTorch zip checkpoint"},
      {"evil_global", "subprocess.Popenxxxxxxx"},
      {"deflated", "compressed"},
      {"not_a_dict", "not a state dict"},
      {"half_tensor", "HalfStorage"},
      {"self_reference", "entry 'self' is a dict"}};
  for (auto [name, expect] : bad) {
    std::string e = error_of([&] { load_pytorch_bytes(corpus("pytorch", name)); });
    EXPECT_NE(e.find(expect), std::string::npos) << name << ": " << e;
  }
}
