#!/usr/bin/env bash
# What `rewind replay --latency recorded` reproduces for a fast backend,
# beside the backend's own time and `--latency recorded-net`. For each
# backend (nginx serving a 1 KB chat answer, and rewind-bench-hello: the
# bare cpp-httplib server with the same bytes), at 1 connection:
#   1. record it through `rewind record` with wrk for SECONDS;
#   2. from the recording: p50 of the time to the headers, of rewind's own
#      time before forwarding (own_before_us) and after the last byte
#      (own_after_us);
#   3. the backend direct, replay --latency recorded, replay --latency
#      recorded-net and replay --latency none (the floor: replay's own work
#      with no pacing) take turns, three runs each (--repeat cycle: every
#      recorded exchange in turn); medians of wrk's p50.
# wrk's latency is to the whole answer; a 1 KB answer is one segment, so
# it is the time to the first byte give or take a few µs.
# Usage: tools/bench/own_time.sh [SECONDS per run, default 5]
source "$(dirname "$0")/lib.sh"
secs=${1:-5}

make_body "$BENCH_DIR/body.json"
start_nginx "$BENCH_DIR/body.json"
start_hello "$BENCH_DIR/body.json"

median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
# p50_column DB COLUMN: the median of a column over the exchanges that have it.
p50_column() {
  sqlite3 "$1" "SELECT $2 FROM exchanges WHERE $2 IS NOT NULL ORDER BY $2
                LIMIT 1 OFFSET (SELECT count(*) / 2 FROM exchanges WHERE $2 IS NOT NULL)"
}
stop_last() {
  kill -TERM "${BENCH_PIDS[-1]}"
  wait "${BENCH_PIDS[-1]}" || true
  unset 'BENCH_PIDS[-1]'
}

echo "| backend | exchanges | direct p50 µs | through record p50 µs | recorded headers p50 µs | own before p50 µs | own after p50 µs | replay recorded p50 µs | replay recorded-net p50 µs | replay none p50 µs | recorded − direct µs | recorded-net − direct µs |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for name in nginx hello; do
  if [[ $name == nginx ]]; then backend=$nginx_url; else backend=$hello_url; fi
  db="$BENCH_DIR/$name.sqlite"
  start_rewind "record-$name" record --backend "$backend" --db "$db" --listen 127.0.0.1:0 --quiet
  read -r _ through _ < <(wrk_post "$url" 1 "$secs")
  stop_last
  start_rewind "replay-$name" replay --db "$db" --listen 127.0.0.1:0 --latency recorded --repeat cycle --quiet
  recorded_url=$url
  start_rewind "replay-net-$name" replay --db "$db" --listen 127.0.0.1:0 --latency recorded-net --repeat cycle --quiet
  net_url=$url
  start_rewind "replay-none-$name" replay --db "$db" --listen 127.0.0.1:0 --latency none --repeat cycle --quiet
  none_url=$url
  d=() r=() n=() z=()
  for _ in 1 2 3; do
    read -r _ p50 _ < <(wrk_post "$backend" 1 "$secs"); d+=("$p50")
    read -r _ p50 _ < <(wrk_post "$recorded_url" 1 "$secs"); r+=("$p50")
    read -r _ p50 _ < <(wrk_post "$net_url" 1 "$secs"); n+=("$p50")
    read -r _ p50 _ < <(wrk_post "$none_url" 1 "$secs"); z+=("$p50")
  done
  stop_last
  stop_last
  stop_last
  awk -v b="$name" -v x="$(sqlite3 "$db" 'SELECT count(*) FROM exchanges')" \
    -v d="$(median "${d[@]}")" -v t="$through" \
    -v h="$(p50_column "$db" headers_us)" -v ob="$(p50_column "$db" own_before_us)" \
    -v oa="$(p50_column "$db" own_after_us)" \
    -v r="$(median "${r[@]}")" -v n="$(median "${n[@]}")" -v z="$(median "${z[@]}")" \
    'BEGIN { printf "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d |\n", b, x, d, t, h, ob, oa, r, n, z, r-d, n-d }'
done
