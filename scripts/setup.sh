#!/usr/bin/env bash
# Installs nnkit's dependencies (Debian packages, only those missing) and builds everything.
#   ./scripts/setup.sh [extra cmake arguments]      e.g. -DNNKIT_SANITIZE=ON
# Environment: NNKIT_BUILD_DIR (default: build), NNKIT_SKIP_APT=1 to skip package installation.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${NNKIT_BUILD_DIR:-build}"

packages=(build-essential cmake ninja-build ccache libeigen3-dev libfmt-dev nlohmann-json3-dev
          libgtest-dev googletest libtorch-dev python3-torch python3-numpy)
if [ "${NNKIT_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build_dir" -j"$(nproc)"
