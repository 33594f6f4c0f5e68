// Shape modules (include/nnkit/nn/flatten.h); semantics from torch/nn/modules/flatten.py.
#include "nnkit/nn/flatten.h"

namespace nnkit::nn {

std::string Unflatten::extra_repr() const {
  std::string s = "dim=" + std::to_string(dim_) + ", unflattened_size=(";
  for (size_t i = 0; i < sizes_.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes_[i]);
  return s + (sizes_.size() == 1 ? ",)" : ")");
}

}  // namespace nnkit::nn
