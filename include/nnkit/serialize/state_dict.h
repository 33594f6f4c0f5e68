#pragma once
// State dicts: ordered name -> tensor maps with PyTorch's keys ("layer1.0.conv1.weight").
#include <map>
#include <string>
#include <vector>

#include "nnkit/core/tensor.h"
#include "nnkit/nn/ordered_dict.h"

namespace nnkit {

using StateDict = OrderedDict<Tensor>;

namespace nn {

struct LoadOptions {
  // Strict: every key of the module must be present and no other key may be.
  bool strict = true;
};

// What a non-strict load skipped.
struct LoadResult {
  std::vector<std::string> missing_keys;
  std::vector<std::string> unexpected_keys;
};

}  // namespace nn

// safetensors files (byte-compatible with Python's `safetensors` package). Writes are atomic:
// a temporary file is written, synced and renamed over `path`.
void save(const StateDict& state, const std::string& path, const std::map<std::string, std::string>& metadata = {});
// Reads a safetensors file into CPU tensors, in the file's data order. Every malformed file is
// an nnkit::Error naming the problem.
StateDict load(const std::string& path);
// The same from bytes in memory (what `load` parses; also the fuzzing entry point).
StateDict load_safetensors_bytes(const std::string& bytes, std::map<std::string, std::string>* metadata = nullptr);
// Reads a state dict written by PyTorch's torch.save(model.state_dict()) (the zip format of
// PyTorch >= 1.6) with a restricted unpickler: only OrderedDicts of float32/float64/int64/bool
// tensors are accepted, nothing in the file is executed, and every malformed or unexpected
// file is an nnkit::Error. Load the result with Module::load_state_dict.
StateDict load_pytorch(const std::string& path);
StateDict load_pytorch_bytes(const std::string& bytes);

std::string save_safetensors_bytes(const StateDict& state, const std::map<std::string, std::string>& metadata = {});

}  // namespace nnkit
