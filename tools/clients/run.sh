#!/usr/bin/env bash
# Runs the official `openai` npm client, 4.x and the current major, against
# `rewind serve`, then through `rewind record` in front of serve, then from
# `rewind replay` with serve stopped, and prints what each call returned
# (tools/clients/openai_check.mjs: chat, responses.create,
# responses.stream, tools, structured output, embeddings, an unknown model,
# an unrecorded prompt).
#
#   tools/clients/run.sh [VERSION ...]     # default: 4 latest
#
# The clients are installed with npm at run time into a cache directory
# (REWIND_CLIENTS_CACHE, default ~/.cache/rewind-clients), once per
# version. REWIND_BIN names the rewind binary (default build/rewind).
# Needs node >= 18 and npm; exits 0 only when replay answered every
# recorded call exactly as record did.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${REWIND_BIN:-$root/build/rewind}
cache=${REWIND_CLIENTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rewind-clients}
versions=("$@")
[[ ${#versions[@]} -gt 0 ]] || versions=(4 latest)

command -v node >/dev/null || { echo "run.sh: node is not installed" >&2; exit 2; }
command -v npm >/dev/null || { echo "run.sh: npm is not installed" >&2; exit 2; }
[[ -x $bin ]] || { echo "run.sh: no rewind binary at $bin (build first, or set REWIND_BIN)" >&2; exit 2; }

# One directory per client version, with zod 3 (both majors accept it).
dirs=()
for v in "${versions[@]}"; do
  dir=$cache/openai-$v
  if [[ ! -d $dir/node_modules/openai || $v == latest && -n $(find "$dir" -maxdepth 0 -mtime +1) ]]; then
    echo "== installing openai@$v and zod@3 into $dir"
    mkdir -p "$dir"
    [[ -f $dir/package.json ]] || echo '{"name":"rewind-client-check","private":true,"type":"module"}' >"$dir/package.json"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "openai@$v" "zod@3" >/dev/null
  fi
  cp "$here/openai_check.mjs" "$dir/openai_check.mjs"
  dirs+=("$dir")
done

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
  echo "run.sh: rewind $name did not start:" >&2
  cat "$work/$name.err" >&2
  exit 2
}

# stop PID: SIGTERM, then wait for it to exit.
stop() {
  kill -TERM "$1"
  wait "$1" 2>/dev/null || true
}

run_clients() {  # run_clients LABEL URL
  for dir in "${dirs[@]}"; do
    (cd "$dir" && node openai_check.mjs "$2" "$1") | tee -a "$work/$1.log"
  done
}

start serve serve --seed 7 --output random --ttft fixed:40 --itl fixed:4 \
  --model gpt-4o-mini --model text-embedding-3-small --tool-rate 0.5
serve_port=$port
echo "== rewind serve on 127.0.0.1:$serve_port"
run_clients serve "http://127.0.0.1:$serve_port/v1"

start record record --backend "http://127.0.0.1:$serve_port" --db "$work/clients.sqlite"
echo "== rewind record on 127.0.0.1:$port, in front of serve"
run_clients record "http://127.0.0.1:$port/v1"
stop "$record_pid"
stop "$serve_pid"
echo "== serve and record stopped; $("$bin" ls --db "$work/clients.sqlite" --json | grep -o '"id":' | wc -l) exchanges recorded"

start replay replay --db "$work/clients.sqlite"
echo "== rewind replay on 127.0.0.1:$port, serve stopped"
run_clients replay "http://127.0.0.1:$port/v1"
stop "$replay_pid"

# Replay must answer every recorded call as record did (timings and the
# deliberately unrecorded prompt aside).
strip() { sed -e 's/^[a-z]* //' -e 's/  \[[0-9]* ms\]$//' "$1" | grep -v '^openai@[^ ]* unrecorded prompt:'; }
if diff <(strip "$work/record.log") <(strip "$work/replay.log") >"$work/diff"; then
  echo "== replay answered every recorded call exactly as record did"
else
  echo "== replay differs from record:"
  cat "$work/diff"
  exit 1
fi
