#!/usr/bin/env bash
# Formats the C++ sources with clang-format (.clang-format: Google style).
#   tools/format.sh            format every tracked .cc/.h in place
#   tools/format.sh --check    list the files that are not formatted; exit 1 if any
#   tools/format.sh FILE...    format just these
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format.sh: clang-format is not installed (apt-get install clang-format)" >&2; exit 2; }
check=0
if [[ ${1:-} == --check ]]; then check=1; shift; fi
files=("$@")
[[ ${#files[@]} -gt 0 ]] || mapfile -t files < <(git ls-files '*.cc' '*.h')
if (( check )); then
  bad=0
  for f in "${files[@]}"; do
    if ! clang-format "$f" | cmp -s - "$f"; then echo "$f"; bad=1; fi
  done
  exit "$bad"
fi
clang-format -i "${files[@]}"
