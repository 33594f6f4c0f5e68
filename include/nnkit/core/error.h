#pragma once
// nnkit::Error: the one exception type nnkit throws for bad input. Messages start with the
// operation's name in brackets, e.g. "[matmul] shapes [2, 3] and [4, 5] cannot be multiplied".
#include <stdexcept>
#include <string>

namespace nnkit {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
[[noreturn]] void throw_error(std::string msg);
}  // namespace detail

}  // namespace nnkit

// NNKIT_CHECK(cond, "[op] message ", value, ...): throws nnkit::Error with the message parts
// concatenated with operator<< when cond is false. Parts are only formatted on failure.
#define NNKIT_CHECK(cond, ...)                                                          \
  do {                                                                                  \
    if (!(cond)) [[unlikely]] ::nnkit::detail::throw_error(::nnkit::detail::concat(__VA_ARGS__)); \
  } while (0)

#include <sstream>
namespace nnkit::detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace nnkit::detail
