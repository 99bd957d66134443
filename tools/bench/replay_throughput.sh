#!/usr/bin/env bash
# Replay throughput: a recorded 1 KB JSON answer to POST /v1/chat/completions
# served by `rewind replay --latency none`, against nginx serving the same
# bytes, in the same run. wrk, keep-alive, 1/32/256 connections. A third
# peer, rewind-bench-hello (cpp-httplib set up as rewind sets it up,
# answering with the same bytes and doing nothing else), separates what the
# HTTP library costs (hello / nginx) from what rewind's own work costs
# (replay / hello). Medians of 3 alternating runs per server.
# Usage: tools/bench/replay_throughput.sh [SECONDS per run, default 5]
source "$(dirname "$0")/lib.sh"
secs=${1:-5}

make_body "$BENCH_DIR/body.json"
start_nginx "$BENCH_DIR/body.json"
start_recorded_replay
start_hello "$BENCH_DIR/body.json"

echo "| connections | nginx req/s | bare cpp-httplib req/s | rewind replay req/s | replay / nginx | replay / bare | bare / nginx | nginx p50 µs | replay p50 µs |"
echo "|---|---|---|---|---|---|---|---|---|"
# Throughput drifts on a shared machine: at each connection count the
# three servers take turns, three runs each, and the medians are compared.
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
for c in 1 32 256; do
  n=() h=() r=() np=() rp=()
  for _ in 1 2 3; do
    read -r rps p50 _ < <(wrk_post "$nginx_url" "$c" "$secs"); n+=("$rps"); np+=("$p50")
    read -r rps _ _ < <(wrk_post "$hello_url" "$c" "$secs"); h+=("$rps")
    read -r rps p50 _ < <(wrk_post "$url" "$c" "$secs"); r+=("$rps"); rp+=("$p50")
  done
  awk -v c="$c" -v n="$(median "${n[@]}")" -v h="$(median "${h[@]}")" -v r="$(median "${r[@]}")" \
    -v np="$(median "${np[@]}")" -v rp="$(median "${rp[@]}")" \
    'BEGIN { printf "| %d | %d | %d | %d | %.2f | %.2f | %.2f | %d | %d |\n", c, n, h, r, r/n, r/h, h/n, np, rp }'
done
