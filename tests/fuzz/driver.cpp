// A stand-in for libFuzzer where it is not available (GCC builds, the default): replays every
// file of the corpus directories, then mutates corpus entries at random (byte flips, random
// bytes, truncation, insertion, chunk duplication, boundary integers) for a bounded time.
// Not coverage-guided, but deterministic (seeded) and it runs in every CI build; with clang,
// configure -DNNKIT_FUZZ=ON for real libFuzzer targets (tests/fuzz/README.md).
//   fuzz_<target> [--seconds N] [--seed S] corpus_dir...
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {
void run(const std::string& s) { LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

std::string mutate(std::string s, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return n == 0 ? size_t(0) : size_t(rng() % n); };
  const int rounds = 1 + int(rng() % 4);
  for (int r = 0; r < rounds; ++r) {
    switch (rng() % 7) {
      case 0:
        if (!s.empty()) s[pick(s.size())] ^= char(1u << (rng() % 8));
        break;
      case 1:
        if (!s.empty()) s[pick(s.size())] = char(rng());
        break;
      case 2: s.resize(pick(s.size() + 1)); break;
      case 3: s.insert(pick(s.size() + 1), std::string(1 + pick(16), char(rng()))); break;
      case 4:
        if (!s.empty()) {
          size_t a = pick(s.size()), n = 1 + pick(std::min<size_t>(64, s.size() - a));
          s.insert(pick(s.size() + 1), s.substr(a, n));
        }
        break;
      case 5:
        if (s.size() >= 8) {  // a boundary integer where a length or offset may live
          static const uint64_t values[] = {0, 1, 0x7f, 0xff, 0xffff, 0xffffffffull, 0x7fffffffffffffffull, ~0ull};
          uint64_t v = values[pick(8)];
          std::memcpy(&s[pick(s.size() - 7)], &v, size_t(1) << (rng() % 4));
        }
        break;
      case 6:
        if (!s.empty()) s.erase(pick(s.size()), 1 + pick(16));
        break;
    }
  }
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  double seconds = 10;
  uint64_t seed = 1;
  std::vector<std::string> corpus;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      for (auto& e : std::filesystem::directory_iterator(a)) {
        if (!e.is_regular_file()) continue;
        std::ifstream f(e.path(), std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        corpus.push_back(ss.str());
      }
    }
  }
  if (corpus.empty()) corpus.push_back("");
  for (auto& c : corpus) run(c);
  std::mt19937_64 rng(seed);
  const auto stop = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  uint64_t execs = 0;
  while (std::chrono::steady_clock::now() < stop) {
    for (int k = 0; k < 64; ++k, ++execs) run(mutate(corpus[rng() % corpus.size()], rng));
  }
  std::printf("fuzz driver: %zu corpus files replayed, %llu mutated inputs in %.0f s, no crash\n", corpus.size(),
              static_cast<unsigned long long>(execs), seconds);
  return 0;
}
