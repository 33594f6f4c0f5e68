#pragma once
// Activation modules: each a thin, hookable wrapper over its functional form.
#include <string>

#include "nnkit/nn/module.h"

namespace nnkit::nn {

class ReLU : public Module {
 public:
  explicit ReLU(bool inplace = false) : inplace_(inplace) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override { return inplace_ ? "inplace=True" : ""; }

 private:
  bool inplace_;
};

class GELU : public Module {
 public:
  // approximate: "none" (exact) or "tanh".
  explicit GELU(std::string approximate = "none");
  Tensor forward(const Tensor& x) override { return x.gelu(approximate_); }
  std::string extra_repr() const override { return "approximate='" + approximate_ + "'"; }

 private:
  std::string approximate_;
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x.sigmoid(); }
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x.tanh(); }
};

}  // namespace nnkit::nn
