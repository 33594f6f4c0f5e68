#pragma once
// The benchmarks' timer (no LibTorch needed: bench_util.h adds the LibTorch thread setup).
#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

namespace bench {

// Wall time of one call of f, in milliseconds.
template <typename F>
double elapsed_ms(F&& f) {
  auto a = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count();
}

inline double median(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Median wall time of f in milliseconds over `reps` runs, after two warm-up runs.
template <typename F>
double median_ms(F&& f, int reps) {
  f();
  f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) t.push_back(elapsed_ms(f));
  return median(std::move(t));
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
  for (int i = 0; i < reps; ++i) {
    tf.push_back(elapsed_ms(f));
    tg.push_back(elapsed_ms(g));
  }
  return {median(std::move(tf)), median(std::move(tg))};
}

}  // namespace bench
