#!/usr/bin/env bash
# clients/python/examples and clients/node/examples as a user runs them:
# record once through `rewind record --normalize date` in front of
# `rewind serve`, replay with serve stopped and the prompt's timestamp
# another (every test passes), then with the prompt really changed (every
# test fails with rewind's explanation of the miss).
# Usage: tests/scripts/client_examples_test.sh SOURCE_DIR REWIND_BINARY PYTHON
# Exits 77 (ctest's skip) when neither pytest nor node >= 18 is there; one
# of them missing skips its half with a message.
set -euo pipefail
src=$(cd "$1" && pwd)
bin=$2
python=$3
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

have_pytest=false have_node=false
command -v "$python" >/dev/null 2>&1 && "$python" -c 'import pytest' 2>/dev/null && have_pytest=true
command -v node >/dev/null 2>&1 && (( $(node -p 'process.versions.node.split(".")[0]') >= 18 )) && have_node=true
if ! $have_pytest && ! $have_node; then
  echo "SKIP: neither pytest ($python) nor node >= 18 is installed"
  exit 77
fi

# serve: starts the dummy engine; sets $backend.
serve() {
  rm -f "$work/serve.port"
  "$bin" serve --listen 127.0.0.1:0 --port-file "$work/serve.port" --quiet --seed 7 >/dev/null 2>&1 &
  pids+=($!)
  serve_pid=$!
  for _ in $(seq 1 200); do [[ -s $work/serve.port ]] && break; sleep 0.05; done
  [[ -s $work/serve.port ]] || fail "rewind serve did not start"
  backend=http://127.0.0.1:$(cat "$work/serve.port")
}
stop_serve() { kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; }

export REWIND_BIN=$bin

if $have_pytest; then
  mkdir "$work/py"
  cp "$src/clients/python/examples/test_dated_prompt.py" "$work/py/"
  cd "$work/py"
  pytest=("$python" -m pytest -p rewind_pytest -p no:cacheprovider --tb=short test_dated_prompt.py --rewind-db dated.sqlite)
  export PYTHONPATH=$src/clients/python PYTHONDONTWRITEBYTECODE=1
  serve
  out=$("${pytest[@]}" --rewind-record --rewind-backend "$backend" --rewind-arg=--normalize=date 2>&1) ||
    fail "pytest record: $out"
  grep -q "3 passed" <<<"$out" || fail "pytest record: $out"
  stop_serve
  [[ $("$bin" show --db dated.sqlite 1) == *'Now is <date>.'* ]] || fail "the date is not normalized in the key"
  sleep 1.1  # the prompt's timestamp (to the microsecond) is another
  out=$("${pytest[@]}" 2>&1) || fail "pytest replay: $out"
  grep -q "3 passed" <<<"$out" || fail "pytest replay: $out"
  echo "pytest example: recorded, then replayed with another timestamp: 3 passed"
  set +e
  out=$(PERSONA='You are verbose.' "${pytest[@]}" 2>&1)
  code=$?
  set -e
  [[ $code -eq 1 ]] || fail "pytest with a changed prompt: exit $code: $out"
  grep -q "3 failed" <<<"$out" || fail "pytest with a changed prompt: $out"
  [[ $(grep -c "differs in: messages\[0\].content" <<<"$out") -eq 3 ]] ||
    fail "pytest does not show rewind's explanation of each miss: $out"
  echo "pytest example: the prompt changed: 3 failed, each with rewind's explanation"
else
  echo "pytest example: skipped ($python has no pytest)"
fi

if $have_node; then
  mkdir "$work/node"
  sed "s|'../rewind.mjs'|'$src/clients/node/rewind.mjs'|" "$src/clients/node/examples/dated_prompt.test.mjs" \
    >"$work/node/dated_prompt.test.mjs"
  cd "$work/node"
  node=(node --test --test-reporter=spec dated_prompt.test.mjs)
  serve
  out=$(REWIND_BACKEND=$backend "${node[@]}" 2>&1) || fail "node record: $out"
  grep -q "pass 3" <<<"$out" || fail "node record: $out"
  stop_serve
  sleep 1.1
  out=$("${node[@]}" 2>&1) || fail "node replay: $out"
  grep -q "pass 3" <<<"$out" || fail "node replay: $out"
  echo "node example: recorded, then replayed with another timestamp: 3 passed"
  set +e
  out=$(PERSONA='You are verbose.' "${node[@]}" 2>&1)
  code=$?
  set -e
  [[ $code -eq 1 ]] || fail "node with a changed prompt: exit $code: $out"
  grep -q "fail 3" <<<"$out" || fail "node with a changed prompt: $out"
  [[ $(grep -c "differs in: messages\[0\].content" <<<"$out") -ge 3 ]] ||
    fail "node does not show rewind's explanation of each miss: $out"
  echo "node example: the prompt changed: 3 failed, each with rewind's explanation"
else
  echo "node example: skipped (no node >= 18)"
fi
