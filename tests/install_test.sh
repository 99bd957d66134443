#!/usr/bin/env bash
# `cmake --install` and the Debian package (tools/package.sh's cpack step,
# from this build): rewind runs from both, the package's Depends are
# derived from the binary, and dpkg installs it into a scratch root.
# Usage: tests/install_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
"$tmp/prefix/bin/rewind" --version | grep -q '^rewind [0-9]'
"$tmp/prefix/bin/rewind" ls --db "$tmp/prefix/share/rewind/recordings/sample.sqlite" --json |
  grep -q '"path"'
echo "cmake --install: rewind runs from $tmp/prefix/bin"

(cd "$build" && cpack -G DEB -B "$tmp/pkg" >/dev/null)
deb=$(ls "$tmp"/pkg/rewind_*.deb)
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libcurl4 libsqlite3 libcpp-httplib libre2; do
  grep -q "$lib" <<<"$depends" || { echo "Depends lacks $lib: $depends" >&2; exit 1; }
done
echo "package: $(basename "$deb"), Depends: $depends"

root="$tmp/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
# --force-depends: the scratch root's database knows none of the libraries
# (they are the host's, which the binary then uses).
dpkg --root="$root" --force-depends --force-not-root -i "$deb" >/dev/null 2>&1
dpkg --root="$root" -s rewind | grep -q '^Status: install ok installed'
"$root/usr/bin/rewind" --version | grep -q '^rewind [0-9]'
"$root/usr/bin/rewind" verify --db "$root/usr/share/rewind/recordings/sample.sqlite" >/dev/null
echo "dpkg: installed into a scratch root; /usr/bin/rewind runs and verifies the sample"
