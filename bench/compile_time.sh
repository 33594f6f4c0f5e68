#!/usr/bin/env bash
# How long a user's file takes to compile: the example ResNet block (examples/resnet_block.cpp,
# the acceptance program of shared/spec/resnet_block.cpp) and a file that only includes
# <nnkit/nnkit.h>, with exactly the flags of the build (from compile_commands.json, without
# ccache), against a minimal LibTorch module translation unit (one Linear in a
# torch::nn::Module, <torch/torch.h>) with LibTorch's flags. Median of N runs (default 5).
#   bench/compile_time.sh [N]          (after ./scripts/setup.sh; NNKIT_BUILD_DIR as there)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${NNKIT_BUILD_DIR:-build}"
runs="${1:-5}"
db="$build_dir/compile_commands.json"
[ -f "$db" ] || { echo "compile_time: no $db; run ./scripts/setup.sh first" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The compile command of a source file in the build, without the ccache launcher and with its
# output sent to the scratch directory.
command_of() {
  python3 - "$db" "$1" "$work/out.o" <<'PY'
import json, shlex, sys
db, src, out = sys.argv[1], sys.argv[2], sys.argv[3]
for e in json.load(open(db)):
    if e["file"].endswith(src):
        args = shlex.split(e["command"])
        if "ccache" in args[0]:
            args = args[1:]
        i = args.index("-o")
        args[i + 1] = out
        args = [a for a in args if a not in ("-MD",)]
        j = args.index("-MF") if "-MF" in args else -1
        if j >= 0:
            del args[j:j + 2]
        j = args.index("-MT") if "-MT" in args else -1
        if j >= 0:
            del args[j:j + 2]
        print("cd " + shlex.quote(e["directory"]) + " && " + " ".join(shlex.quote(a) for a in args))
        break
else:
    sys.exit("no compile command for " + src)
PY
}

# Median wall time (s) of a shell command over $runs runs.
median_time() {
  local times=()
  for _ in $(seq "$runs"); do
    local t0 t1
    t0=$(date +%s.%N)
    bash -c "$1" >/dev/null
    t1=$(date +%s.%N)
    times+=("$(echo "$t1 - $t0" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]}'
}

example_cmd="$(command_of examples/resnet_block.cpp)"
echo '#include <nnkit/nnkit.h>' > "$work/include_only.cpp"
include_cmd="${example_cmd//$PWD\/examples\/resnet_block.cpp/$work/include_only.cpp}"

cat > "$work/torch_module.cpp" <<'CPP'
#include <torch/torch.h>
struct Net : torch::nn::Module {
  Net() : fc(register_module("fc", torch::nn::Linear(10, 10))) {}
  torch::Tensor forward(torch::Tensor x) { return torch::relu(fc(x)); }
  torch::nn::Linear fc;
};
int main() { Net n; return n.forward(torch::ones({1, 10})).numel() == 10 ? 0 : 1; }
CPP
torch_cmd=""
parity_cmd="$(command_of tests/parity/linalg_test.cpp 2>/dev/null || true)"
if [ -n "$parity_cmd" ]; then
  # LibTorch's include directories and definitions, as the parity suite compiles with them
  # (without its precompiled header).
  torch_cmd="$(echo "$parity_cmd" | sed -E 's/ -include [^ ]*cmake_pch[^ ]*//g; s/ -Winvalid-pch//g')"
  torch_cmd="${torch_cmd//$PWD\/tests\/parity\/linalg_test.cpp/$work/torch_module.cpp}"
fi

echo "compile times, median of $runs (this machine: $(nproc) cores, $(c++ --version | head -1))"
echo
echo "| translation unit | seconds |"
echo "|---|---|"
echo "| \`#include <nnkit/nnkit.h>\` only | $(median_time "$include_cmd") |"
ex=$(median_time "$example_cmd")
echo "| examples/resnet_block.cpp (the spec's ResNet block program) | $ex |"
if [ -n "$torch_cmd" ]; then
  tt=$(median_time "$torch_cmd")
  echo "| minimal LibTorch module (\`<torch/torch.h>\`, one Linear) | $tt |"
  echo
  echo "ratio resnet_block.cpp / minimal LibTorch module: $(echo "scale=3; $ex / $tt" | bc)"
fi
