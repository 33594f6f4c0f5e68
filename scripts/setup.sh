#!/usr/bin/env bash
# Installs nnkit's dependencies on Debian 12 (only the packages that are missing) and builds
# everything: the library, tests, examples and benchmarks.
#   ./scripts/setup.sh [extra cmake arguments]      e.g. -DNNKIT_SANITIZE=ON
# Environment: NNKIT_BUILD_DIR (default: build), NNKIT_SKIP_APT=1 to skip package installation.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${NNKIT_BUILD_DIR:-build}"

# libtorch-dev (LibTorch, for the parity suite and the benchmarks) is large; that is expected.
# libopenblas0-pthread gives LibTorch a real BLAS (Debian falls back to the slow reference BLAS
# otherwise), so the benchmarks compare nnkit with LibTorch at its best.
# dataset-fashion-mnist (and zlib for its .gz files) is what examples/train_resnet trains on.
# clang-14, libclang-rt-14-dev (libFuzzer) and libomp-14-dev (its OpenMP) build and run the
# loader fuzz targets in the tests.
packages=(build-essential cmake ninja-build ccache libeigen3-dev libfmt-dev nlohmann-json3-dev
          libgtest-dev googletest libtorch-dev python3-torch python3-torchvision python3-numpy libopenblas0-pthread
          zlib1g-dev dataset-fashion-mnist clang-14 libclang-rt-14-dev libomp-14-dev)

if [ "${NNKIT_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
      sudo=(sudo)
    fi
    "${sudo[@]}" apt-get update
    # env: sudo drops the caller's environment, DEBIAN_FRONTEND included.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y --no-install-recommends "${missing[@]}"
  else
    echo "setup: all Debian packages present"
  fi
fi

# Ninja for a new build directory; an existing one keeps the generator it was made with.
generator=()
[ -f "$build_dir/CMakeCache.txt" ] || generator=(-G Ninja)
# NNKIT_WERROR: the project's own build (and so CI) treats any compiler warning as an error;
# pass -DNNKIT_WERROR=OFF to build with another compiler's new warnings.
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DNNKIT_WERROR=ON "$@"
cmake --build "$build_dir" -j"$(nproc)"
