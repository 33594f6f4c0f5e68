// Dropout modules (include/nnkit/nn/dropout.h); semantics from torch/nn/modules/dropout.py.
#include "nnkit/nn/dropout.h"

namespace nnkit::nn {

DropoutNd::DropoutNd(const char* who, double p) : p_(p) {
  NNKIT_CHECK(p >= 0 && p <= 1, "[", who, "] dropout probability has to be between 0 and 1, but got ", p);
}

std::string DropoutNd::extra_repr() const { return "p=" + py_float(p_) + ", inplace=False"; }

}  // namespace nnkit::nn
