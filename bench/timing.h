#pragma once
// The benchmarks' timer (no LibTorch needed: bench_util.h adds the LibTorch thread setup).
#include <algorithm>
#include <chrono>
#include <vector>

namespace bench {

// Median wall time of f in milliseconds over `reps` runs, after two warm-up runs.
template <typename F>
double median_ms(F&& f, int reps) {
  f();
  f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace bench
