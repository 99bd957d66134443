#!/usr/bin/env bash
# Recordings made by following the README and build directories stay out
# of `git status`; the shipped sample stays in. Skipped (77) outside a git
# checkout.
set -euo pipefail
source_dir=${1:?usage: gitignore_test.sh SOURCE_DIR}
cd "$source_dir"
if ! command -v git >/dev/null || ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "skipped: not a git checkout"
  exit 77
fi
fail() { echo "FAIL: $*" >&2; exit 1; }
for path in recordings/prod.sqlite recordings/prod.sqlite-wal recordings/prod.sqlite-shm \
            recordings/prod.sqlite-journal rec.sqlite build/rewind build-asan/rewind \
            build-tsan/tests/rewind_tests; do
  git check-ignore -q --no-index "$path" || fail "$path is not ignored"
done
for path in recordings/sample.sqlite src/cli/main.cc README.md; do
  if git check-ignore -q --no-index "$path"; then fail "$path is ignored"; fi
done
echo "ok"
