#pragma once
// nnkit::Error: the one exception type nnkit throws for bad input. Messages start with the
// operation's name in brackets, e.g. "[matmul] shapes [2, 3] and [4, 5] cannot be multiplied".
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace nnkit {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Warnings (things that are allowed but probably wrong, e.g. a captured feature modified in
// place) go to a process-wide handler: by default a line on stderr. Install your own to log,
// count or turn them into errors; an empty function restores the default. Returns the old one.
using WarningHandler = std::function<void(std::string_view message)>;
WarningHandler set_warning_handler(WarningHandler handler);
// Sends a message to the current handler (thread-safe).
void warn(std::string_view message);

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
