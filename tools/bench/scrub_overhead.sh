#!/usr/bin/env bash
# Scrubbing cost: rewind record with and without --scrub all, in front of
# nginx (a 1 KB chat answer), sent a 1 KB chat request that carries an
# e-mail, a phone number, a card number and an API key. The two recorders
# take turns, RUNS runs each; medians are compared (goal: with --scrub
# within 10 % of without).
# Usage: tools/bench/scrub_overhead.sh [SECONDS per run, default 5] [RUNS, default 3]
source "$(dirname "$0")/lib.sh"
secs=${1:-5}
runs=${2:-3}

make_body "$BENCH_DIR/body.json"
start_nginx "$BENCH_DIR/body.json"

# A 1 KB chat request: a system prompt, a user turn with personal data,
# and padding text.
pad=$(printf 'lorem ipsum dolor sit amet %.0s' $(seq 1 26))
request=$(printf '{"model":"bench","temperature":0.2,"messages":[{"role":"system","content":"You are a support assistant. %s"},{"role":"user","content":"My e-mail is jane.doe@example.com and my phone +1 415 555 0132; card 4111 1111 1111 1111 was charged twice. The key I use is sk-proj-abcdefghijklmnopqrstuvwx0123. Please help."}]}' "$pad")
printf '%s' "$request" >"$BENCH_DIR/request.json"
bytes=$(wc -c <"$BENCH_DIR/request.json")

cat >"$BENCH_DIR/scrub.lua" <<LUA
wrk.method = "POST"
wrk.body = [[$request]]
wrk.headers["Content-Type"] = "application/json"
LUA

# cpu_ticks PID: user + system clock ticks the process has used.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# wrk_run URL CONNECTIONS PID: prints "rps p50_us cpu_us_per_request", the
# last being the CPU time the recorder (PID) spent per request: unlike
# throughput, it hardly depends on what else the machine runs.
wrk_run() {
  local threads=2 before after
  [[ $2 -lt 2 ]] && threads=1
  before=$(cpu_ticks "$3")
  wrk -t"$threads" -c"$2" -d"$secs"s --latency -s "$BENCH_DIR/scrub.lua" \
    "$1/v1/chat/completions" >"$BENCH_DIR/wrk.out"
  after=$(cpu_ticks "$3")
  awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
    function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return v*1000; if (v ~ /s$/) return v*1000000; return v }
    /requests in/ { n=$1 }
    /Requests\/sec/ { rps=$2 }
    $1=="50%" { p50=us($2) }
    /Non-2xx/ { bad=$NF }
    END { printf "%d %.0f %.1f\n", rps, p50, ticks / hz * 1e6 / n; if (bad) print "bench: non-2xx answers: " bad > "/dev/stderr" }
  ' "$BENCH_DIR/wrk.out"
}

start_rewind plain record --backend "$nginx_url" --db "$BENCH_DIR/plain.sqlite" \
  --listen 127.0.0.1:0 --quiet
plain_url=$url
plain_pid=${BENCH_PIDS[-1]}
start_rewind scrubbed record --backend "$nginx_url" --db "$BENCH_DIR/scrubbed.sqlite" \
  --listen 127.0.0.1:0 --quiet --scrub all --scrub-key bench-key-0123456789
scrub_url=$url
scrub_pid=${BENCH_PIDS[-1]}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "request: $bytes bytes; answer: $(wc -c <"$BENCH_DIR/body.json") bytes; $runs runs of ${secs} s each, taking turns"
echo
echo "| connections | record req/s (median) | record --scrub all req/s (median) | ratio | record p50 µs | --scrub p50 µs | recorder CPU µs/request | with --scrub | CPU ratio |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in 1 32; do
  : >"$BENCH_DIR/plain.$c"
  : >"$BENCH_DIR/scrub.$c"
  for _ in $(seq "$runs"); do
    wrk_run "$plain_url" "$c" "$plain_pid" >>"$BENCH_DIR/plain.$c"
    wrk_run "$scrub_url" "$c" "$scrub_pid" >>"$BENCH_DIR/scrub.$c"
  done
  col() { cut -d' ' -f"$1" "$2" | median; }
  awk -v c="$c" -v p="$(col 1 "$BENCH_DIR/plain.$c")" -v s="$(col 1 "$BENCH_DIR/scrub.$c")" \
      -v pp="$(col 2 "$BENCH_DIR/plain.$c")" -v sp="$(col 2 "$BENCH_DIR/scrub.$c")" \
      -v pc="$(col 3 "$BENCH_DIR/plain.$c")" -v sc="$(col 3 "$BENCH_DIR/scrub.$c")" \
    'BEGIN { printf "| %d | %d | %d | %.2f | %d | %d | %.1f | %.1f | %.2f |\n", c, p, s, s/p, pp, sp, pc, sc, sc/pc }'
done
echo
echo "runs (req/s, p50 µs, CPU µs/request): plain 1: $(tr '\n' ';' <"$BENCH_DIR/plain.1") scrub 1: $(tr '\n' ';' <"$BENCH_DIR/scrub.1")"
echo "runs (req/s, p50 µs, CPU µs/request): plain 32: $(tr '\n' ';' <"$BENCH_DIR/plain.32") scrub 32: $(tr '\n' ';' <"$BENCH_DIR/scrub.32")"
for p in "${BENCH_PIDS[@]:1}"; do kill -TERM "$p"; done
sleep 1
echo "recorded: $(sqlite3 "$BENCH_DIR/plain.sqlite" 'select count(*) from exchanges') plain, $(sqlite3 "$BENCH_DIR/scrubbed.sqlite" 'select count(*) from exchanges') scrubbed"
echo "the scrubbed recording holds the e-mail: $(sqlite3 "$BENCH_DIR/scrubbed.sqlite" "select count(*) from exchanges where cast(request_body as text) like '%jane.doe%'") rows (goal 0); the plain one: $(sqlite3 "$BENCH_DIR/plain.sqlite" "select count(*) from exchanges where cast(request_body as text) like '%jane.doe%'")"
