#!/usr/bin/env bash
# tools/demo/run.sh says what it is doing before it installs and builds,
# and shows the build's own output, instead of minutes of silence. cmake
# and dpkg-query are stubs (the build dir's binaries are the real ones);
# the demo itself then runs end to end.
set -euo pipefail
source_dir=${1:?usage: demo_progress_test.sh SOURCE_DIR BUILD_DIR}
build_dir=${2:?usage: demo_progress_test.sh SOURCE_DIR BUILD_DIR}
stubs=$(mktemp -d)
trap 'rm -rf "$stubs"' EXIT
printf '#!%s\necho "install ok installed"\n' "$BASH" >"$stubs/dpkg-query"
cat >"$stubs/cmake" <<STUB
#!$BASH
if [[ "\$1" == --build ]]; then
  echo "[ 50%] Building CXX object CMakeFiles/rewind.dir/src/cli/main.cc.o"
  echo "[100%] Built target rewind"
fi
STUB
chmod +x "$stubs"/*

fail() { echo "FAIL: $*" >&2; echo "--- demo output:" >&2; cat "$stubs/out" >&2; exit 1; }
PATH="$stubs:$PATH" REWIND_BUILD_DIR="$build_dir" "$BASH" "$source_dir/tools/demo/run.sh" \
  >"$stubs/out" 2>&1 || fail "the demo failed (exit $?)"
first=$(head -1 "$stubs/out")
[[ "$first" == "demo: checking the Debian packages"* ]] || fail "first line is not a step: $first"
grep -n . "$stubs/out" >"$stubs/numbered"
building=$(grep -m1 "demo: building rewind" "$stubs/numbered" | cut -d: -f1)
progress=$(grep -m1 "Building CXX object" "$stubs/numbered" | cut -d: -f1)
[[ -n "$building" ]] || fail "no line announces the build"
[[ -n "$progress" ]] || fail "the build's own output is hidden"
(( building < progress )) || fail "the build's output comes before its step line"
grep -q "Built target" "$stubs/out" && fail "up-to-date targets are listed"
grep -q "^demo: done" "$stubs/out" || fail "the demo did not finish"
# Time to the response headers is "headers", as in rewind's own output.
grep -qi "ttfb" "$stubs/out" && fail "the demo says TTFB"
grep -q " headers [0-9.]*s " "$stubs/out" || fail "no time to headers"
echo "ok"
