#!/usr/bin/env bash
# Replay against the single-core C ceiling: `rewind replay --latency none`
# answering a recorded 1 KB JSON answer to POST /v1/chat/completions, and
# nginx with one worker answering the same bytes from memory
# (`return 200`), in the same run; wrk -t1, keep-alive, 1/32/256
# connections; medians of 3 alternating runs. Goal: replay >= 0.9x nginx
# at each. Extra rewind flags may follow the seconds (e.g. --threads 1).
# Usage: tools/bench/ceiling.sh [SECONDS per run, default 5] [REWIND FLAGS...]
export NGINX_WORKERS=1 NGINX_RETURN=1 WRK_THREADS=1
source "$(dirname "$0")/lib.sh"
secs=${1:-5}
shift || true

make_body "$BENCH_DIR/body.json"
start_nginx "$BENCH_DIR/body.json"
start_recorded_replay "$@"

echo "| connections | nginx (1 worker) req/s | rewind replay req/s | replay / nginx | nginx p50 µs | replay p50 µs |"
echo "|---|---|---|---|---|---|"
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
for c in 1 32 256; do
  n=() r=() np=() rp=()
  for _ in 1 2 3; do
    read -r rps p50 _ < <(wrk_post "$nginx_url" "$c" "$secs"); n+=("$rps"); np+=("$p50")
    read -r rps p50 _ < <(wrk_post "$url" "$c" "$secs"); r+=("$rps"); rp+=("$p50")
  done
  awk -v c="$c" -v n="$(median "${n[@]}")" -v r="$(median "${r[@]}")" \
    -v np="$(median "${np[@]}")" -v rp="$(median "${rp[@]}")" \
    'BEGIN { printf "| %d | %d | %d | %.2f | %d | %d |\n", c, n, r, r/n, np, rp }'
done
