// Must NOT compile with -Werror: dropping a hook handle silently loses the only way to remove
// the hook, so registration results are [[nodiscard]] (checked by ctest compile_fail_*).
#include <nnkit/nnkit.h>

void f(nnkit::nn::Module& m) {
  m.register_forward_hook([](nnkit::nn::Module&, const nnkit::TensorList&, nnkit::TensorList&) {});
}
