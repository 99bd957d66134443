#!/usr/bin/env bash
# Configures and builds rewind into build/ (binaries: build/rewind,
# build/rewind-demo-backend, build/tests/rewind_tests), or into
# $REWIND_BUILD_DIR when set.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${REWIND_BUILD_DIR:-build}
tools/setup/deps.sh "$@"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"
