#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for
# a bounded time on a copy of its seed corpus (tests/fuzz/corpus/TARGET).
# Usage: tools/fuzz.sh [SECONDS per target, default 60] [TARGET ...]
# A crash stops the run; its input is kept in build-fuzz/artifacts/.
# Targets: request_key import openai http_front stream request_parser scrub.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup/deps.sh --fuzz
secs=${1:-60}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(request_key import openai http_front stream request_parser scrub)

CXX=clang++ CC=clang cmake -S . -B build-fuzz -DREWIND_FUZZ=ON \
  -DREWIND_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null

mkdir -p build-fuzz/artifacts
# Any undefined behaviour is a finding, except the suppressed ones (each
# explained in the file).
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$PWD/tests/sanitizers/ubsan.supp"
for t in "${targets[@]}"; do
  corpus=$(mktemp -d)
  cp tests/fuzz/corpus/"$t"/* "$corpus"/
  echo "fuzz_$t: ${secs}s"
  set +e
  build-fuzz/fuzz_"$t" "$corpus" -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix=build-fuzz/artifacts/"$t"- >build-fuzz/fuzz_"$t".log 2>&1
  status=$?
  set -e
  grep -E "^(stat::number_of_executed_units|stat::new_units_added)|ERROR|SUMMARY|runtime error" \
    build-fuzz/fuzz_"$t".log || true
  rm -rf "$corpus"
  if [[ $status -ne 0 ]]; then
    echo "fuzz_$t found a problem; input in build-fuzz/artifacts/" >&2
    exit 1
  fi
done
