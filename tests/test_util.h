#pragma once
// Helpers shared by the test suites.
#include <functional>
#include <nnkit/nnkit.h>
#include <string>

namespace nnkit::test_util {

// The message of the nnkit::Error that f throws, or "<no error>".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace nnkit::test_util
