#!/usr/bin/env bash
# Runs every test (unit suites, LibTorch parity when present, examples, install check).
#   ./scripts/test.sh [extra ctest arguments]       e.g. -L parity, -R Module
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${NNKIT_BUILD_DIR:-build}"
# Two threads per test process; ctest runs as many processes as there are cores.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" "$@"
