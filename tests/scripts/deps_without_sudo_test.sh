#!/usr/bin/env bash
# tools/setup/deps.sh as a user who is not root, on a machine without sudo:
# it must say what to run as root instead of failing on "sudo: command not
# found"; with sudo it installs through it. Every command it calls is a stub
# on a PATH of its own, so nothing is installed.
set -euo pipefail
source_dir=${1:?usage: deps_without_sudo_test.sh SOURCE_DIR}
stubs=$(mktemp -d)
trap 'rm -rf "$stubs"' EXIT
for tool in grep cat; do ln -s "$(command -v "$tool")" "$stubs/$tool"; done
printf '#!%s\necho 1000\n' "$BASH" >"$stubs/id"
printf '#!%s\nexit 1\n' "$BASH" >"$stubs/dpkg-query"          # nothing is installed
printf '#!%s\necho "apt-get $*" >>"%s/calls"\n' "$BASH" "$stubs" >"$stubs/apt-get"
chmod +x "$stubs"/*

fail() { echo "FAIL: $*" >&2; exit 1; }

# No sudo: exit 1 and the exact command to run as root.
set +e
out=$(PATH="$stubs" "$BASH" "$source_dir/tools/setup/deps.sh" 2>&1)
code=$?
set -e
[[ $code -eq 1 ]] || fail "exit $code, want 1: $out"
grep -q "command not found" <<<"$out" && fail "a command was not found: $out"
grep -q "As root, run:" <<<"$out" || fail "no advice: $out"
missing=$(sed -n 's/^rewind setup: these Debian packages are missing: //p' <<<"$out")
[[ " $missing " == *" g++ "* && " $missing " == *" libcpp-httplib-dev "* ]] \
  || fail "the missing packages are not named: $out"
grep -qxF "  apt-get update && apt-get install -y --no-install-recommends $missing" <<<"$out" \
  || fail "no apt-get command naming the packages: $out"
[[ ! -e "$stubs/calls" ]] || fail "apt-get ran without root: $(cat "$stubs/calls")"

# With sudo: apt-get runs through it.
printf '#!%s\necho "sudo $*" >>"%s/calls"\n' "$BASH" "$stubs" >"$stubs/sudo"
chmod +x "$stubs/sudo"
PATH="$stubs" "$BASH" "$source_dir/tools/setup/deps.sh" >/dev/null 2>&1 || fail "exit $? with sudo"
grep -qxF "sudo apt-get install -y -q --no-install-recommends $missing" "$stubs/calls" \
  || fail "apt-get install not run through sudo: $(cat "$stubs/calls")"
echo "ok"
