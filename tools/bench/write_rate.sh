#!/usr/bin/env bash
# Record write rate: exchanges/s committed by the group-commit writer with
# wrk at 32 connections through rewind record in front of nginx; then
# SIGKILL and check that every exchange counted as committed is in the file.
# Usage: tools/bench/write_rate.sh [SECONDS, default 5]
source "$(dirname "$0")/lib.sh"
secs=${1:-5}
make_body "$BENCH_DIR/body.json"
start_nginx "$BENCH_DIR/body.json"
start_rewind record record --backend "$nginx_url" --db "$BENCH_DIR/rec.sqlite" --listen 127.0.0.1:0 --quiet
pid=${BENCH_PIDS[-1]}
read -r rps _ < <(wrk_post "$url" 32 "$secs")
written=$(curl -s "$url/metrics" | awk '/^rewind_store_exchanges_written_total/ {print $2}')
commits=$(curl -s "$url/metrics" | awk '/^rewind_store_commits_total/ {print $2}')
kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; unset 'BENCH_PIDS[-1]'
rows=$(sqlite3 "$BENCH_DIR/rec.sqlite" 'select count(*) from exchanges')
check=$(sqlite3 "$BENCH_DIR/rec.sqlite" 'pragma integrity_check')
echo "| requests/s | exchanges committed/s | per commit | after SIGKILL: rows / committed | integrity |"
echo "|---|---|---|---|---|"
awk -v r="$rps" -v w="$written" -v c="$commits" -v s="$secs" -v rows="$rows" -v ok="$check" \
  'BEGIN { printf "| %d | %d | %.1f | %d / %d | %s |\n", r, w / s, w / c, rows, w, ok }'
