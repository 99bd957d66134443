#!/usr/bin/env bash
# Scale: replay start-up time and RSS on a generated recording of N
# exchanges (default 1,000,000), and hit throughput against a 1,000-exchange
# recording in the same run (wrk, 32 connections, the same request; the two
# servers take turns, median of 3 runs each).
# Usage: tools/bench/scale.sh [N] [SECONDS per wrk run, default 5]
source "$(dirname "$0")/lib.sh"
n=${1:-1000000}
secs=${2:-5}
build/rewind-gen --db "$BENCH_DIR/big.sqlite" --count "$n" --stream-share 0.1 >/dev/null
build/rewind-gen --db "$BENCH_DIR/small.sqlite" --count 1000 --stream-share 0.1 >/dev/null
body=$(sqlite3 "$BENCH_DIR/small.sqlite" "select cast(request_body as text) from exchanges where id=2")
CHAT_REQUEST=$body

start() {  # DB -> "startup_s rss_mb url", the server left running
  local t0 t1 pid rss
  t0=$(date +%s.%N)
  start_rewind "$1" replay --db "$BENCH_DIR/$1.sqlite" --listen 127.0.0.1:0 --latency none --quiet
  t1=$(date +%s.%N)
  pid=${BENCH_PIDS[-1]}
  rss=$(awk '/VmRSS/ {print $2}' /proc/"$pid"/status)
  echo "$(echo "$t1 - $t0" | bc) $((rss / 1024)) $url"
}
read -r s_big rss_big url_big < <(start big)
read -r s_small rss_small url_small < <(start small)
# Throughput drifts on a shared machine: the two servers take turns, three
# runs each, and the medians are compared.
big=() small=()
for _ in 1 2 3; do
  read -r r _ < <(wrk_post "$url_big" 32 "$secs"); big+=("$r")
  read -r r _ < <(wrk_post "$url_small" 32 "$secs"); small+=("$r")
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
rps_big=$(median "${big[@]}")
rps_small=$(median "${small[@]}")
echo "| recording | start-up s | RSS MB | hit req/s (median of 3) |"
echo "|---|---|---|---|"
echo "| $n exchanges | $s_big | $rss_big | $rps_big |"
echo "| 1000 exchanges | $s_small | $rss_small | $rps_small |"
awk -v a="$rps_big" -v b="$rps_small" 'BEGIN { printf "hit throughput ratio (big / small): %.2f\n", a / b }'
