#pragma once
// The benchmarks' timer (no LibTorch needed: bench_util.h adds the LibTorch thread setup).
#include <algorithm>
#include <chrono>
#include <utility>
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

// Median wall times (ms) of f and g over `reps` runs each, taken alternately (f, g, f, g, ...)
// after two warm-up runs of each, so that a slow phase of a shared machine hits both sides.
template <typename F, typename G>
std::pair<double, double> median_ms_interleaved(F&& f, G&& g, int reps) {
  f();
  f();
  g();
  g();
  std::vector<double> tf, tg;
  auto time = [](auto& fn) {
    auto a = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count();
  };
  for (int i = 0; i < reps; ++i) {
    tf.push_back(time(f));
    tg.push_back(time(g));
  }
  std::sort(tf.begin(), tf.end());
  std::sort(tg.begin(), tg.end());
  return {tf[tf.size() / 2], tg[tg.size() / 2]};
}

}  // namespace bench
