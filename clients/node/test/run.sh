#!/usr/bin/env bash
# The node module's tests against the real binary (ctest: client_node).
# Usage: clients/node/test/run.sh REWIND_BINARY
# Exits 77 (ctest's skip) when node (>= 18) is missing. The openai test
# installs the package with npm into a cache directory the first time and
# is skipped with a message when npm's registry is unreachable.
set -euo pipefail
export REWIND_BIN=$1
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1; then
  echo "SKIP: node is not installed; the node module is not tested"
  exit 77
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if (( major < 18 )); then
  echo "SKIP: node $(node --version) is older than 18 (no fetch, no node:test); the node module is not tested"
  exit 77
fi
cd "$here"
exec node --test --test-reporter=spec "$here"/*.test.mjs
