#!/usr/bin/env bash
# Builds a Debian package of rewind (release build, stripped; Depends
# derived from the binary's shared libraries) into build-package/ and
# prints its path. Install it with `apt-get install ./rewind_*.deb`.
# Usage: tools/package.sh [BUILD_DIR, default build-package]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-package}
tools/setup/deps.sh
command -v dpkg-shlibdeps >/dev/null || {
  echo "rewind package: dpkg-shlibdeps is missing; run (as root): apt-get install dpkg-dev" >&2
  exit 2
}
echo "rewind package: building (release) in $dir" >&2
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DREWIND_BUILD_TESTS=OFF >/dev/null
cmake --build "$dir" -j "$(nproc)" --target rewind
(cd "$dir" && cpack -G DEB >/dev/null)
ls "$dir"/rewind_*.deb
