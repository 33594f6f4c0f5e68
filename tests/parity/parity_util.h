// Shared helpers of the LibTorch parity suite (tests/parity/*_test.cpp, one file per family as
// in src/): the same random inputs go through nnkit and LibTorch; outputs and gradients (for the
// same random upstream gradient) must agree to a relative error of 1e-5 in float32 and 1e-10 in
// float64. Layers get LibTorch's parameters copied by name, which also proves that parameter and
// buffer names and shapes match. <torch/torch.h> is a precompiled header of the suite (it costs
// ~19 s and 1 GB of compiler memory per translation unit otherwise).
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <nnkit/nnkit.h>
#include <random>
#include <string>
#include <vector>

#include "parity/torch_twins.h"

namespace nk = nnkit;
namespace nn = nnkit::nn;
namespace F = nnkit::nn::functional;

namespace parity {

inline torch::Tensor to_torch(const nk::Tensor& t) {
  nk::Tensor c = t.detach().contiguous();
  auto dtype = c.dtype() == nk::kFloat32   ? torch::kFloat32
               : c.dtype() == nk::kFloat64 ? torch::kFloat64
               : c.dtype() == nk::kInt64   ? torch::kInt64
                                           : torch::kBool;
  std::vector<int64_t> sizes = c.sizes().vec();
  return torch::from_blob(c.raw_data(), sizes, torch::TensorOptions().dtype(dtype)).clone();
}

inline double max_abs(const torch::Tensor& t) { return t.numel() ? t.abs().max().item<double>() : 0.0; }

// Relative error of a against the reference b.
inline double rel_err(const nk::Tensor& a, const torch::Tensor& b) {
  torch::Tensor ta = to_torch(a).to(torch::kFloat64), tb = b.detach().to(torch::kFloat64);
  EXPECT_EQ(ta.sizes(), tb.sizes());
  if (ta.sizes() != tb.sizes()) return 1e30;
  return max_abs(ta - tb) / std::max(max_abs(tb), 1e-6);
}

inline double tol(nk::Dtype d) { return d == nk::kFloat64 ? 1e-10 : 1e-5; }

// The worst error seen per case, printed as a table when the suite ends.
inline std::map<std::string, double>& worst() {
  static std::map<std::string, double> w;
  return w;
}
inline void record(const std::string& name, double e) { worst()[name] = std::max(worst()[name], e); }

struct ParityEnv : ::testing::Environment {
  void TearDown() override {
    std::printf("\nmax relative error vs LibTorch, per op:\n| op | max rel. error |\n|---|---|\n");
    for (auto& [k, v] : worst()) std::printf("| %s | %.2e |\n", k.c_str(), v);
  }
};
inline ::testing::Environment* const env = ::testing::AddGlobalTestEnvironment(new ParityEnv);

using NkFn = std::function<nk::Tensor(const nk::TensorList&)>;
using TFn = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;

// Runs both sides on the same inputs; compares outputs and the gradients of every input.
inline void check_op(const std::string& name, const std::vector<nk::Tensor>& inputs, const NkFn& nf, const TFn& tf) {
  std::vector<torch::Tensor> tin;
  nk::TensorList nin;
  for (auto& x : inputs) {
    bool grad = x.is_floating_point();
    nk::Tensor n = x.detach().clone();
    if (grad) n.requires_grad_(true);
    nin.push_back(n);
    torch::Tensor t = to_torch(x);
    if (grad) t.requires_grad_(true);
    tin.push_back(t);
  }
  nk::Tensor no = nf(nin);
  torch::Tensor to = tf(tin);
  double e = rel_err(no, to);
  record(name, e);
  EXPECT_LE(e, tol(no.dtype())) << name << ": output differs";
  // An op that loses its grad_fn must fail here, not skip the gradient comparison.
  ASSERT_EQ(no.requires_grad(), to.requires_grad()) << name << ": requires_grad of the output";
  if (!no.requires_grad()) return;
  nk::Tensor up = nk::randn(no.sizes(), {.dtype = no.dtype()});
  no.backward(up);
  to.backward(to_torch(up));
  for (size_t i = 0; i < nin.size(); ++i) {
    if (!tin[i].requires_grad()) continue;
    ASSERT_EQ(nin[i].grad().defined(), tin[i].grad().defined()) << name << ": gradient presence of input " << i;
    if (!tin[i].grad().defined()) continue;
    double ge = rel_err(nin[i].grad(), tin[i].grad());
    record(name + " (grad)", ge);
    EXPECT_LE(ge, tol(no.dtype())) << name << ": gradient of input " << i << " differs";
  }
}

inline nk::Tensor R(const nk::Shape& s, nk::Dtype d = nk::kFloat32) { return nk::randn(s, {.dtype = d}); }
inline nk::Tensor Idx(const nk::Shape& s, int64_t n) { return nk::randint(0, n, s); }

// Copies LibTorch's parameters and buffers into the nnkit module by name; the name sets must match.
inline void copy_state(nn::Module& nkm, torch::nn::Module& tm) {
  try {
    load_from_torch(nkm, tm);
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
}

// The same module in both libraries (state copied from LibTorch's): output, input gradients
// and parameter gradients compared.
inline void check_module(const std::string& name, nn::Module& nm, torch::nn::Module& tm, const nk::TensorList& inputs,
                         const std::function<nk::Tensor(const nk::TensorList&)>& nf,
                         const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& tf) {
  copy_state(nm, tm);
  nk::TensorList nin;
  std::vector<torch::Tensor> tin;
  for (auto& x : inputs) {
    bool grad = x.is_floating_point();
    nk::Tensor n = x.detach().clone();
    torch::Tensor t = to_torch(x);
    if (grad) {
      n.requires_grad_(true);
      t.requires_grad_(true);
    }
    nin.push_back(n);
    tin.push_back(t);
  }
  nk::Tensor yn = nf(nin);
  torch::Tensor yt = tf(tin);
  double e = rel_err(yn, yt);
  record(name, e);
  EXPECT_LE(e, 1e-5) << name;
  nk::Tensor up = nk::randn(yn.sizes());
  yn.backward(up);
  yt.backward(to_torch(up));
  for (size_t i = 0; i < nin.size(); ++i)
    if (tin[i].requires_grad()) {
      double ge = rel_err(nin[i].grad(), tin[i].grad());
      record(name + " (input grad)", ge);
      EXPECT_LE(ge, 1e-5) << name << " input " << i;
    }
  auto tp = tm.named_parameters(true);
  for (auto& [pname, p] : nm.named_parameters()) {
    double ge = rel_err(p.grad(), tp[pname].grad());
    record(name + " (param grad)", ge);
    EXPECT_LE(ge, 1e-5) << name << " " << pname;
  }
}

// A fixture run once per floating dtype (float32, float64), seeded. Each file derives its own
// (`class ParityConv : public parity::DtypeTest {};`) and instantiates it with
// NNKIT_PARITY_DTYPES(ParityConv).
class DtypeTest : public ::testing::TestWithParam<nk::Dtype> {
 protected:
  void SetUp() override {
    nk::manual_seed(1234);
    torch::manual_seed(1234);
  }
};

}  // namespace parity

#define NNKIT_PARITY_DTYPES(Fixture)                                                 \
  INSTANTIATE_TEST_SUITE_P(Dtypes, Fixture, ::testing::Values(nk::kFloat32, nk::kFloat64), \
                           [](const auto& info) { return std::string(nk::dtype_name(info.param)); })
