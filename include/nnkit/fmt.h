#pragma once
// fmt support: fmt::format("{}", tensor) prints PyTorch's repr; shapes print as [2, 3].
// Not part of <nnkit/nnkit.h> (to keep users' compile times down): include it where needed.
#include <fmt/format.h>

#include "nnkit/core/tensor.h"

template <>
struct fmt::formatter<nnkit::Tensor> : fmt::formatter<std::string> {
  template <typename Ctx>
  auto format(const nnkit::Tensor& t, Ctx& ctx) const {
    return fmt::formatter<std::string>::format(t.to_string(), ctx);
  }
};

template <>
struct fmt::formatter<nnkit::Shape> : fmt::formatter<std::string> {
  template <typename Ctx>
  auto format(const nnkit::Shape& s, Ctx& ctx) const {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return fmt::formatter<std::string>::format(out + "]", ctx);
  }
};
