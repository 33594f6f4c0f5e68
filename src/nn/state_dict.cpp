// Module::state_dict and load_state_dict (validate everything, then copy).
#include <algorithm>
#include <sstream>

#include "nnkit/autograd/grad_mode.h"
#include "nnkit/nn/module.h"
#include "nnkit/ops.h"

namespace nnkit::nn {

StateDict Module::state_dict() const {
  StateDict out;
  for (auto& nm : named_modules()) {
    const std::string prefix = nm.name.empty() ? "" : nm.name + ".";
    for (auto& [n, t] : nm.module.parameter_registry())
      if (t.defined() && !out.contains(prefix + n)) out.insert(prefix + n, t);
    for (auto& [n, t] : nm.module.buffer_registry())
      if (t.defined() && nm.module.is_persistent_buffer(n) && !out.contains(prefix + n)) out.insert(prefix + n, t);
  }
  return out;
}

LoadResult Module::load_state_dict(const StateDict& state, const LoadOptions& options) {
  StateDict own = state_dict();
  LoadResult result;
  std::vector<std::string> problems;
  for (auto& [k, t] : own) {
    const Tensor* src = state.find(k);
    if (!src) {
      result.missing_keys.push_back(k);
      continue;
    }
    std::ostringstream os;
    if (!src->defined()) {
      os << "'" << k << "': the checkpoint's tensor is undefined";
    } else if (src->sizes() != t.sizes()) {
      os << "size mismatch for '" << k << "': copying a param with shape " << src->sizes()
         << " from checkpoint, the shape in current model is " << t.sizes();
    } else if (src->dtype() != t.dtype()) {
      os << "dtype mismatch for '" << k << "': the checkpoint has " << src->dtype() << ", the model has " << t.dtype()
         << " (convert the model with ->to(dtype) or the checkpoint tensor first)";
    }
    if (!os.str().empty()) problems.push_back(os.str());
  }
  for (auto& [k, t] : state)
    if (!own.contains(k)) result.unexpected_keys.push_back(k);
  if (options.strict) {
    if (!result.missing_keys.empty()) {
      std::string s = "missing key(s) in state_dict: ";
      for (size_t i = 0; i < result.missing_keys.size(); ++i) s += (i ? ", \"" : "\"") + result.missing_keys[i] + "\"";
      problems.insert(problems.begin(), s);
    }
    if (!result.unexpected_keys.empty()) {
      std::string s = "unexpected key(s) in state_dict: ";
      for (size_t i = 0; i < result.unexpected_keys.size(); ++i)
        s += (i ? ", \"" : "\"") + result.unexpected_keys[i] + "\"";
      problems.insert(problems.begin(), s);
    }
  }
  if (!problems.empty()) {
    std::string msg = "[load_state_dict] error(s) in loading state_dict for " + name() +
                      " (nothing was changed):";
    for (auto& p : problems) msg += "\n\t" + p;
    if (options.strict && problems.size() == 1 && (!result.missing_keys.empty() || !result.unexpected_keys.empty()))
      msg += "\n\t(pass {.strict = false} to load a partial checkpoint)";
    nnkit::detail::throw_error(msg);
  }
  NoGradGuard g;
  for (auto& [k, t] : own)
    if (const Tensor* src = state.find(k)) const_cast<Tensor&>(t).copy_(*src);
  return result;
}

}  // namespace nnkit::nn
