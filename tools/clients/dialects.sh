#!/usr/bin/env bash
# Runs the official Anthropic (`@anthropic-ai/sdk`) and Ollama (`ollama`)
# npm clients against `rewind serve`, then through `rewind record` in front
# of serve, then from `rewind replay` with serve stopped, and prints what
# each call returned (tools/clients/dialects.mjs: messages.create,
# messages.stream, tool use plain and streamed, chat, chat streamed,
# generate, tools, list, and an unrecorded prompt per client: how each
# client shows a replay miss).
#
#   tools/clients/dialects.sh
#
# The clients are installed with npm at run time into a cache directory
# (REWIND_CLIENTS_CACHE, default ~/.cache/rewind-clients), once.
# REWIND_BIN names the rewind binary (default build/rewind). Needs node >= 18
# and npm; exits 0 only when replay answered every recorded call exactly as
# record did and each unrecorded prompt got rewind's explanation.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${REWIND_BIN:-$root/build/rewind}
cache=${REWIND_CLIENTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rewind-clients}
dir=$cache/dialects

command -v node >/dev/null || { echo "dialects.sh: node is not installed" >&2; exit 2; }
command -v npm >/dev/null || { echo "dialects.sh: npm is not installed" >&2; exit 2; }
[[ -x $bin ]] || { echo "dialects.sh: no rewind binary at $bin (build first, or set REWIND_BIN)" >&2; exit 2; }

if [[ ! -d $dir/node_modules/@anthropic-ai/sdk || ! -d $dir/node_modules/ollama ]]; then
  echo "== installing @anthropic-ai/sdk and ollama into $dir"
  mkdir -p "$dir"
  [[ -f $dir/package.json ]] || echo '{"name":"rewind-dialect-check","private":true,"type":"module"}' >"$dir/package.json"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error @anthropic-ai/sdk ollama >/dev/null
fi
cp "$here/dialects.mjs" "$dir/dialects.mjs"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME ARGS...: starts rewind in the background; sets $port.
start() {
  local name=$1
  shift
  "$bin" "$@" --listen 127.0.0.1:0 --quiet >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  eval "${name}_pid=$!"
  port=
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/$name.out")
    [[ -n $port ]] && return 0
    sleep 0.1
  done
  echo "dialects.sh: rewind $name did not start:" >&2
  cat "$work/$name.err" >&2
  exit 2
}

# stop PID: SIGTERM, then wait for it to exit.
stop() {
  kill -TERM "$1"
  wait "$1" 2>/dev/null || true
}

run_clients() {  # run_clients LABEL URL
  (cd "$dir" && node dialects.mjs "$2" "$1") | tee "$work/$1.log"
}

start serve serve --seed 7 --output random --ttft fixed:40 --itl fixed:4
serve_port=$port
echo "== rewind serve on 127.0.0.1:$serve_port"
run_clients serve "http://127.0.0.1:$serve_port"

start record record --backend "http://127.0.0.1:$serve_port" --db "$work/dialects.sqlite"
echo "== rewind record on 127.0.0.1:$port, in front of serve"
run_clients record "http://127.0.0.1:$port"
stop "$record_pid"
stop "$serve_pid"
echo "== serve and record stopped; $("$bin" ls --db "$work/dialects.sqlite" --json | grep -o '"id":' | wc -l) exchanges recorded"

start replay replay --db "$work/dialects.sqlite"
echo "== rewind replay on 127.0.0.1:$port, serve stopped"
run_clients replay "http://127.0.0.1:$port"
stop "$replay_pid"

# Replay must answer every recorded call as record did (timings and the
# deliberately unrecorded prompts aside), and each client must show
# rewind's explanation of the miss as its error message.
strip() { sed -e 's/^[a-z]* //' -e 's/  \[[0-9]* ms\]$//' "$1" | grep -v ' unrecorded prompt:'; }
status=0
if diff <(strip "$work/record.log") <(strip "$work/replay.log") >"$work/diff"; then
  echo "== replay answered every recorded call exactly as record did"
else
  echo "== replay differs from record:"
  cat "$work/diff"
  status=1
fi
for client in anthropic ollama; do
  line=$(grep "^replay $client@[^ ]* unrecorded prompt:" "$work/replay.log" || true)
  if [[ $line == *"no recorded response for POST"*"nearest recording is #"* ]]; then
    echo "== $client shows the miss with rewind's explanation"
  else
    echo "== $client did not show rewind's explanation of the miss: $line"
    status=1
  fi
done
exit $status
