#!/usr/bin/env bash
# Runs every test: the unit suites, the LibTorch parity suite (when LibTorch was found), the
# examples, the install/find_package check and the compile-fail checks.
#   ./scripts/test.sh [extra ctest arguments]       e.g. -L parity, -R Module
# Environment: NNKIT_BUILD_DIR (default: build), as for setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${NNKIT_BUILD_DIR:-build}"
if [ ! -f "$build_dir/CTestTestfile.cmake" ]; then
  echo "test: no tests in $build_dir; run ./scripts/setup.sh first" >&2
  exit 1
fi
# ctest runs one test process per core; each one uses two OpenMP threads unless told otherwise.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" "$@"
