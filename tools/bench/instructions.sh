#!/usr/bin/env bash
# Instructions per replayed request, counted by valgrind's callgrind:
# repeatable on a noisy machine where wall-clock numbers are not. Runs a
# replay server under callgrind, sends N identical requests (default 2000,
# one connection each, as curl does) after a warm-up, and prints the
# server's instructions per request: accepting, parsing, keying, looking
# up, writing.
# Usage: tools/bench/instructions.sh [N]
source "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null || { echo "bench: valgrind is needed" >&2; exit 2; }
n=${1:-2000}
make_body "$BENCH_DIR/body.json"
start_nginx "$BENCH_DIR/body.json"
start_rewind record record --backend "$nginx_url" --db "$BENCH_DIR/rec.sqlite" --listen 127.0.0.1:0 --quiet
curl -s -o /dev/null "$url/v1/chat/completions" -H 'Content-Type: application/json' -d "$CHAT_REQUEST"
kill -TERM "${BENCH_PIDS[-1]}"; wait "${BENCH_PIDS[-1]}" || true; unset 'BENCH_PIDS[-1]'

# count NAME CMD...: runs the server CMD under callgrind (PORT in its
# arguments becomes a free port) and prints its instructions per request.
count() {
  local name=$1; shift
  port=$(free_port)
  local args=("${@//PORT/$port}")
  valgrind --tool=callgrind --callgrind-out-file="$BENCH_DIR/$name.cg" --instr-atstart=no \
    "${args[@]}" >"$BENCH_DIR/$name.log" 2>&1 &
  BENCH_PIDS+=($!)
  for _ in $(seq 200); do
    curl -s -o /dev/null -X POST "http://127.0.0.1:$port/v1/chat/completions" -d '{}' && break
    sleep 0.1
  done
  post 50  # warm-up: caches filled, threads started
  callgrind_control -i on "${BENCH_PIDS[-1]}" >/dev/null 2>&1
  post "$n"
  callgrind_control -i off "${BENCH_PIDS[-1]}" >/dev/null 2>&1
  # The profile is written at exit; it holds only the instrumented window.
  kill -TERM "${BENCH_PIDS[-1]}"; wait "${BENCH_PIDS[-1]}" 2>/dev/null || true; unset 'BENCH_PIDS[-1]'
  local total
  total=$(cat "$BENCH_DIR/$name".cg* | awk '/^totals:/ {s += $2} END {print s}')
  echo $((total / n))
}
post() {
  for _ in $(seq "$1"); do
    curl -s -o /dev/null "http://127.0.0.1:$port/v1/chat/completions" \
      -H 'Content-Type: application/json' -d "$CHAT_REQUEST"
  done
}

replay=$(count replay build/rewind replay --db "$BENCH_DIR/rec.sqlite" --listen 127.0.0.1:PORT \
  --latency none --quiet --max-connections 4)
hello=$(count hello build/rewind-bench-hello "$BENCH_DIR/body.json" 4 PORT)
echo "instructions per replayed request (1 KB JSON, --latency none): $replay"
echo "instructions per request of the bare cpp-httplib server (rewind-bench-hello, same bytes): $hello"
echo "replay / bare: $(awk -v r="$replay" -v h="$hello" 'BEGIN { printf "%.2f", r / h }')"
