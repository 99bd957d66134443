#!/usr/bin/env bash
# rewind against the record/replay tools users pick instead, in one run:
# the same 1 KB JSON answer to POST /v1/chat/completions, wrk keep-alive at
# 1, 32 and 256 connections, servers taking turns (3 runs each, medians).
#
# Replay: nginx serving the bytes (the ceiling), the bare cpp-httplib
# server (rewind-bench-hello: what the HTTP library alone costs), rewind
# replay (--latency none --quiet), WireMock 3 standalone (a stub,
# --no-request-journal --async-response-enabled true), talkback 4 (a tape
# recorded once, then record: DISABLED).
# Record: each in front of the same nginx: rewind record, WireMock's
# recorder (recordings API, started afresh before each run), talkback
# record: OVERWRITE.
#
# WireMock's jar and talkback come from the npm registry, Java from
# Debian's default-jre-headless; all installed on first use (npm packages
# into ~/.cache/rewind-bench/peers). A peer that cannot be installed is
# skipped with a message; the others still run.
# Usage: tools/bench/peers.sh [SECONDS per run, default 5]
source "$(dirname "$0")/lib.sh"
secs=${1:-5}
peers_dir=${XDG_CACHE_HOME:-$HOME/.cache}/rewind-bench/peers

install_peers() {
  if ! command -v java >/dev/null; then
    echo "bench: installing default-jre-headless for WireMock" >&2
    $(command -v sudo || true) apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null 2>&1 || true
  fi
  mkdir -p "$peers_dir"
  if [[ ! -d "$peers_dir/node_modules/talkback" || ! -d "$peers_dir/node_modules/wiremock" ]]; then
    if command -v npm >/dev/null; then
      echo "bench: installing wiremock@3 and talkback@4 from npm into $peers_dir" >&2
      (cd "$peers_dir" && timeout 300 npm install --no-audit --no-fund --silent wiremock@3 talkback@4 >/dev/null 2>&1) || true
    fi
  fi
  wiremock_jar=$(find "$peers_dir/node_modules/wiremock" -name 'wiremock-standalone-*.jar' 2>/dev/null | head -1 || true)
  if [[ -z "$wiremock_jar" ]] || ! command -v java >/dev/null; then
    echo "bench: WireMock skipped (no Java or no jar: npm registry or Debian unreachable?)" >&2
    wiremock_jar=""
  fi
  talkback_ok=""
  if command -v node >/dev/null && [[ -d "$peers_dir/node_modules/talkback" ]]; then
    talkback_ok=1
  else
    echo "bench: talkback skipped (no node or the npm registry unreachable)" >&2
  fi
}

wait_http() {  # URL: waits until it answers anything
  for _ in $(seq 600); do
    curl -s -o /dev/null -m 1 "$1" && return 0
    sleep 0.05
  done
  echo "bench: $1 did not come up" >&2
  return 1
}

# start_wiremock NAME ARGS...: sets $wm_url.
start_wiremock() {
  local name=$1 port
  shift
  port=$(free_port)
  mkdir -p "$BENCH_DIR/$name/mappings" "$BENCH_DIR/$name/__files"
  java -Xms256m -jar "$wiremock_jar" --port "$port" --bind-address 127.0.0.1 \
    --root-dir "$BENCH_DIR/$name" --disable-banner "$@" \
    >"$BENCH_DIR/$name.out" 2>&1 &
  BENCH_PIDS+=($!)
  wm_url="http://127.0.0.1:$port"
  wait_http "$wm_url/__admin/health"
}

# start_talkback NAME MODE: talkback in front of nginx; sets $tb_url.
start_talkback() {
  local name=$1 mode=$2 port
  port=$(free_port)
  mkdir -p "$BENCH_DIR/tapes"
  cat >"$BENCH_DIR/$name.js" <<JS
const talkback = require("$peers_dir/node_modules/talkback");
talkback({
  host: "$nginx_url", port: $port, path: "$BENCH_DIR/tapes",
  record: talkback.Options.RecordMode.$mode, silent: true, summary: false,
  // Match on method, path and body, as rewind does: curl (which records
  // the tape) and wrk send different User-Agent and Accept headers.
  ignoreHeaders: ["content-length", "host", "user-agent", "accept"],
}).start(() => console.log("listening"));
JS
  node "$BENCH_DIR/$name.js" >"$BENCH_DIR/$name.out" 2>&1 &
  BENCH_PIDS+=($!)
  tb_url="http://127.0.0.1:$port"
  for _ in $(seq 200); do
    grep -q listening "$BENCH_DIR/$name.out" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench: talkback did not start" >&2
  cat "$BENCH_DIR/$name.out" >&2
  return 1
}

stop_last() {
  kill -TERM "${BENCH_PIDS[-1]}" 2>/dev/null || true
  wait "${BENCH_PIDS[-1]}" 2>/dev/null || true
  unset 'BENCH_PIDS[-1]'
}

post_once() {  # URL: one chat request, prints the status
  curl -s -o /dev/null -w '%{http_code}' "$1/v1/chat/completions" \
    -H 'Content-Type: application/json' -d "$CHAT_REQUEST"
}

median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }

# compare TITLE NAME=URL...: one table, every server at 1/32/256
# connections, ratios against the first server.
compare() {
  local title=$1
  shift
  local names=() urls=()
  for pair in "$@"; do names+=("${pair%%=*}"); urls+=("${pair#*=}"); done
  echo "### $title"
  echo
  local head="| connections |" rule="|---|"
  for n in "${names[@]}"; do head+=" $n req/s |"; rule+="---|"; done
  for n in "${names[@]:1}"; do head+=" ${names[0]} / $n |"; rule+="---|"; done
  echo "$head"
  echo "$rule"
  # Warm-up, not measured: the JVM compiles WireMock's hot paths, node
  # talkback's, and every server has its connections and caches ready.
  for u in "${urls[@]}"; do wrk_post "$u" 32 "$secs" >/dev/null; done
  for c in 1 32 256; do
    declare -A runs=()
    for _ in 1 2 3; do
      for i in "${!urls[@]}"; do
        # A server with a restart_NAME function starts afresh before each
        # run (sets $fresh_url).
        if declare -F "restart_${names[$i]}" >/dev/null; then
          "restart_${names[$i]}"
          urls[$i]=$fresh_url
        fi
        read -r rps _ _ < <(wrk_post "${urls[$i]}" "$c" "$secs")
        runs[$i]+="$rps "
      done
    done
    local row="| $c |" med=()
    for i in "${!urls[@]}"; do
      # shellcheck disable=SC2086
      med[$i]=$(median ${runs[$i]})
      row+=" $(printf '%.0f' "${med[$i]}") |"
    done
    for i in "${!urls[@]}"; do
      [[ $i -eq 0 ]] && continue
      row+=" $(awk -v a="${med[0]}" -v b="${med[$i]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }') |"
    done
    echo "$row"
    unset runs
  done
  echo
}

install_peers
make_body "$BENCH_DIR/body.json"
start_nginx "$BENCH_DIR/body.json"

# --- Replay -----------------------------------------------------------------
start_rewind record record --backend "$nginx_url" --db "$BENCH_DIR/rec.sqlite" --listen 127.0.0.1:0 --quiet
post_once "$url" >/dev/null
stop_last
start_rewind replay replay --db "$BENCH_DIR/rec.sqlite" --listen 127.0.0.1:0 --latency none --quiet
replay_url=$url
start_hello "$BENCH_DIR/body.json"
servers=("rewind=$replay_url" "nginx=$nginx_url" "bare=$hello_url")
if [[ -n "$wiremock_jar" ]]; then
  body=$(cat "$BENCH_DIR/body.json")
  start_wiremock wm-replay --no-request-journal --async-response-enabled true
  curl -s -o /dev/null -X POST "$wm_url/__admin/mappings" -H 'Content-Type: application/json' \
    -d "{\"request\":{\"method\":\"POST\",\"url\":\"/v1/chat/completions\"},\"response\":{\"status\":200,\"headers\":{\"Content-Type\":\"application/json\"},\"body\":$(printf '%s' "$body" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}}"
  [[ $(post_once "$wm_url") == 200 ]] && servers+=("WireMock=$wm_url") || echo "bench: WireMock stub did not answer; skipped" >&2
fi
if [[ -n "$talkback_ok" ]]; then
  start_talkback tb-rec NEW && post_once "$tb_url" >/dev/null && stop_last
  start_talkback tb-replay DISABLED
  [[ $(post_once "$tb_url") == 200 ]] && servers+=("talkback=$tb_url") || echo "bench: talkback tape did not answer; skipped" >&2
fi
compare "Replay (1 KB JSON, keep-alive)" "${servers[@]}"

# --- Record -----------------------------------------------------------------
# Every peer stays up from here on; stop the replay servers first so they
# do not share the cores while idle (java's GC threads, node's loop).
for _ in $(seq $(( ${#BENCH_PIDS[@]} - 1 ))); do stop_last; done
start_rewind record2 record --backend "$nginx_url" --db "$BENCH_DIR/rec2.sqlite" --listen 127.0.0.1:0 --quiet
servers=("rewind=$url")
if [[ -n "$wiremock_jar" ]]; then
  # WireMock's recorder (POST /__admin/recordings/start): it proxies to
  # the target and records from its request journal, writing stubs when
  # stopped. (The older --proxy-all --record-mappings, which writes a stub
  # file per request, ran at 115-131 req/s at 32 connections here.) It
  # starts afresh before each run: a new JVM, warmed up for 2 s, then its
  # journal and stubs dropped and the recording started again, so what is
  # compared is its best case.
  wm_record_n=0 wm_record_pid=""
  restart_WireMock() {
    if [[ -n "$wm_record_pid" ]]; then
      kill -TERM "$wm_record_pid" 2>/dev/null || true
      wait "$wm_record_pid" 2>/dev/null || true
    fi
    wm_record_n=$((wm_record_n + 1))
    start_wiremock "wm-record-$wm_record_n" --async-response-enabled true
    wm_record_pid=${BENCH_PIDS[-1]}
    local start="{\"targetBaseUrl\":\"$nginx_url\"}"
    curl -s -o /dev/null -X POST "$wm_url/__admin/recordings/start" -H 'Content-Type: application/json' -d "$start"
    wrk_post "$wm_url" 32 2 >/dev/null
    curl -s -o /dev/null -X POST "$wm_url/__admin/recordings/stop"
    curl -s -o /dev/null -X DELETE "$wm_url/__admin/mappings"
    curl -s -o /dev/null -X DELETE "$wm_url/__admin/requests"
    curl -s -o /dev/null -X POST "$wm_url/__admin/recordings/start" -H 'Content-Type: application/json' -d "$start"
    fresh_url=$wm_url
  }
  restart_WireMock
  [[ $(post_once "$wm_url") == 200 ]] && servers+=("WireMock=$wm_url") || echo "bench: WireMock recorder did not answer; skipped" >&2
fi
if [[ -n "$talkback_ok" ]]; then
  rm -rf "$BENCH_DIR/tapes"
  start_talkback tb-overwrite OVERWRITE
  [[ $(post_once "$tb_url") == 200 ]] && servers+=("talkback=$tb_url") || echo "bench: talkback recorder did not answer; skipped" >&2
fi
compare "Record (in front of nginx, every request stored)" "${servers[@]}"
