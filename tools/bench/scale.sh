#!/usr/bin/env bash
# Scale: replay start-up time and RSS on a generated recording of N
# exchanges (default 1,000,000), and hit throughput against a 1,000-exchange
# recording in the same run (wrk, 32 connections, the same request).
# Usage: tools/bench/scale.sh [N] [SECONDS per wrk run, default 5]
source "$(dirname "$0")/lib.sh"
n=${1:-1000000}
secs=${2:-5}
build/rewind-gen --db "$BENCH_DIR/big.sqlite" --count "$n" --stream-share 0.1 >/dev/null
build/rewind-gen --db "$BENCH_DIR/small.sqlite" --count 1000 --stream-share 0.1 >/dev/null
body=$(sqlite3 "$BENCH_DIR/small.sqlite" "select cast(request_body as text) from exchanges where id=2")
CHAT_REQUEST=$body

measure() {  # DB -> "startup_s rss_mb rps"
  local t0 t1 pid
  t0=$(date +%s.%N)
  start_rewind "$1" replay --db "$BENCH_DIR/$1.sqlite" --listen 127.0.0.1:0 --latency none --quiet
  t1=$(date +%s.%N)
  pid=${BENCH_PIDS[-1]}
  local rss
  rss=$(awk '/VmRSS/ {print $2}' /proc/"$pid"/status)
  read -r rps _ < <(wrk_post "$url" 32 "$secs")
  kill -TERM "$pid"; wait "$pid" || true; unset 'BENCH_PIDS[-1]'
  echo "$(echo "$t1 - $t0" | bc) $((rss / 1024)) $rps"
}
read -r s_big rss_big rps_big < <(measure big)
read -r s_small rss_small rps_small < <(measure small)
echo "| recording | start-up s | RSS MB | hit req/s |"
echo "|---|---|---|---|"
echo "| $n exchanges | $s_big | $rss_big | $rps_big |"
echo "| 1000 exchanges | $s_small | $rss_small | $rps_small |"
awk -v a="$rps_big" -v b="$rps_small" 'BEGIN { printf "hit throughput ratio (big / small): %.2f\n", a / b }'
