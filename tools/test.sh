#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh
cd build
# Serial on purpose: the streaming tests measure timing on a 2-core machine.
ctest --output-on-failure --timeout 300
