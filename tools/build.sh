#!/usr/bin/env bash
# Configures and builds rewind into build/ (binaries: build/rewind,
# build/rewind-demo-backend, build/tests/rewind_tests), or into
# $REWIND_BUILD_DIR when set.
# Usage: tools/build.sh [--bench|--fuzz|--release|--demo]
#   --release builds the rewind binary alone, Release and stripped, into
#   build-release/ (what the container image ships; with ccache when it is
#   installed); --demo builds only what tools/demo/run.sh runs (rewind and
#   rewind-demo-backend), not the tests; the others are passed to
#   tools/setup/deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${REWIND_BUILD_DIR:-build}
targets=()
if [[ ${1:-} == --demo ]]; then
  targets=(--target rewind rewind-demo-backend)
  shift
fi
tools/setup/deps.sh "$@"
if [[ ${1:-} == --release ]]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release \
        -DREWIND_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
  cmake --build build-release -j "$(nproc)" --target rewind
  strip build-release/rewind
  exit 0
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" "${targets[@]}"
