#!/usr/bin/env bash
# Record overhead: client -> rewind record -> nginx, against client -> nginx,
# in the same run. p50 latency at 1 connection, throughput at 32.
# Every request through rewind is recorded (group-committed to SQLite).
# Usage: tools/bench/record_overhead.sh [SECONDS per run, default 5]
source "$(dirname "$0")/lib.sh"
secs=${1:-5}

make_body "$BENCH_DIR/body.json"
start_nginx "$BENCH_DIR/body.json"
start_rewind record record --backend "$nginx_url" --db "$BENCH_DIR/rec.sqlite" --listen 127.0.0.1:0 --quiet

echo "| connections | direct req/s | through record req/s | ratio | direct p50 µs | record p50 µs | added p50 µs | direct p99 µs | record p99 µs |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in 1 32; do
  read -r d_rps d_p50 d_p99 < <(wrk_post "$nginx_url" "$c" "$secs")
  read -r r_rps r_p50 r_p99 < <(wrk_post "$url" "$c" "$secs")
  awk -v c="$c" -v d="$d_rps" -v r="$r_rps" -v dp="$d_p50" -v rp="$r_p50" -v d9="$d_p99" -v r9="$r_p99" \
    'BEGIN { printf "| %d | %d | %d | %.2f | %d | %d | %d | %d | %d |\n", c, d, r, r/d, dp, rp, rp-dp, d9, r9 }'
done
kill -TERM "${BENCH_PIDS[-1]}"; wait "${BENCH_PIDS[-1]}" || true; unset 'BENCH_PIDS[-1]'
echo
echo "exchanges recorded: $(sqlite3 "$BENCH_DIR/rec.sqlite" 'select count(*) from exchanges'); integrity: $(sqlite3 "$BENCH_DIR/rec.sqlite" 'pragma integrity_check')"
