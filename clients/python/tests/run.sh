#!/usr/bin/env bash
# The pytest plugin's tests against the real binary (ctest: client_pytest).
# Usage: clients/python/tests/run.sh PYTHON REWIND_BINARY
# Exits 77 (ctest's skip) when PYTHON or its pytest is missing.
set -euo pipefail
python=$1
export REWIND_BIN=$2
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v "$python" >/dev/null 2>&1; then
  echo "SKIP: no python3 ($python); the pytest plugin is not tested"
  exit 77
fi
if ! "$python" -c 'import pytest' 2>/dev/null; then
  echo "SKIP: $python has no pytest (Debian: apt-get install python3-pytest); the pytest plugin is not tested"
  exit 77
fi
export PYTHONPATH=$here/..${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1
cd "$here"
exec "$python" -m pytest -p no:cacheprovider -q "$here"
