# Shared helpers of the benchmark scripts (sourced, not run).
# Everything listens on 127.0.0.1 and is stopped on exit.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
tools/build.sh --bench >/dev/null

BENCH_DIR=$(mktemp -d)
BENCH_PIDS=()
bench_cleanup() {
  for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "${BENCH_KEEP:-}" ]] || rm -rf "$BENCH_DIR"
}
trap bench_cleanup EXIT

# free_port: prints a port nothing listens on now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000))
}

# start_rewind NAME ARGS...: runs build/rewind ARGS in the background and
# sets $url once it prints its "listening on" line.
start_rewind() {
  local name=$1; shift
  "${REWIND_BIN:-build/rewind}" "$@" >"$BENCH_DIR/$name.out" 2>"$BENCH_DIR/$name.err" &
  BENCH_PIDS+=($!)
  for _ in $(seq 200); do
    if grep -q "listening on" "$BENCH_DIR/$name.out" 2>/dev/null; then
      url=$(grep -o 'http://[0-9.:]*' "$BENCH_DIR/$name.out" | head -1)
      # Wait for the accept loop (the line comes once the socket is bound).
      curl -s -o /dev/null "$url/__rewind/health"
      return
    fi
    sleep 0.05
  done
  echo "bench: $name did not start" >&2
  cat "$BENCH_DIR/$name.err" >&2
  exit 1
}

# start_nginx BODY_FILE: nginx answering every request with the file's bytes
# as application/json; sets $nginx_url.
start_nginx() {
  local port
  port=$(free_port)
  mkdir -p "$BENCH_DIR/nginx"
  cp "$1" "$BENCH_DIR/nginx/body.json"
  # nginx's workers run as an unprivileged user when started by root.
  chmod 755 "$BENCH_DIR" "$BENCH_DIR/nginx"
  chmod 644 "$BENCH_DIR/nginx/body.json"
  # NGINX_WORKERS=1: the single-core C ceiling; NGINX_RETURN=1: the body
  # from memory ("return 200"), not from a file.
  local answer="root $BENCH_DIR/nginx;
      try_files /body.json =404;"
  if [[ -n "${NGINX_RETURN:-}" ]]; then
    answer="return 200 '$(cat "$1")';"
  fi
  cat >"$BENCH_DIR/nginx/nginx.conf" <<CONF
worker_processes ${NGINX_WORKERS:-auto};
error_log $BENCH_DIR/nginx/error.log;
pid $BENCH_DIR/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $BENCH_DIR/nginx;
  proxy_temp_path $BENCH_DIR/nginx;
  fastcgi_temp_path $BENCH_DIR/nginx;
  uwsgi_temp_path $BENCH_DIR/nginx;
  scgi_temp_path $BENCH_DIR/nginx;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    location / {
      default_type application/json;
      # POST to a static file is 405; answer every method with the body.
      error_page 405 =200 \$uri;
      $answer
    }
  }
}
CONF
  nginx -c "$BENCH_DIR/nginx/nginx.conf" -g 'daemon off;' &
  BENCH_PIDS+=($!)
  nginx_url="http://127.0.0.1:$port"
  for _ in $(seq 100); do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' -X POST "$nginx_url/v1/chat/completions" -d '{}') == 200 ]]; then
      return
    fi
    sleep 0.05
  done
  echo "bench: nginx did not start" >&2
  cat "$BENCH_DIR/nginx/error.log" >&2
  exit 1
}

# start_hello BODY_FILE: rewind-bench-hello (cpp-httplib set up as rewind
# sets it up, answering with the file's bytes); sets $hello_url.
start_hello() {
  build/rewind-bench-hello "$1" >"$BENCH_DIR/hello.out" 2>&1 &
  BENCH_PIDS+=($!)
  for _ in $(seq 100); do
    hello_url=$(grep -o "http://[0-9.:]*" "$BENCH_DIR/hello.out" 2>/dev/null | head -1 || true)
    [[ -n "$hello_url" ]] && curl -s -o /dev/null "$hello_url/" && return
    sleep 0.05
  done
  echo "bench: rewind-bench-hello did not start" >&2
  exit 1
}

# start_recorded_replay [REWIND FLAGS...]: records nginx's answer to
# CHAT_REQUEST through `rewind record`, then serves it with `rewind replay
# --latency none --quiet` and the given flags; sets $url. Fails unless the
# replay hits. Needs start_nginx first.
start_recorded_replay() {
  start_rewind record record --backend "$nginx_url" --db "$BENCH_DIR/rec.sqlite" --listen 127.0.0.1:0
  curl -s -o /dev/null "$url/v1/chat/completions" -H 'Content-Type: application/json' -d "$CHAT_REQUEST"
  kill -TERM "${BENCH_PIDS[-1]}"; wait "${BENCH_PIDS[-1]}" || true; unset 'BENCH_PIDS[-1]'
  start_rewind replay replay --db "$BENCH_DIR/rec.sqlite" --listen 127.0.0.1:0 --latency none --quiet "$@"
  local hit
  hit=$(curl -s -D - -o /dev/null "$url/v1/chat/completions" -H 'Content-Type: application/json' -d "$CHAT_REQUEST" | grep -i '^x-rewind:' | tr -d '\r')
  [[ "$hit" == *hit* ]] || { echo "bench: replay did not hit ($hit)" >&2; exit 1; }
}

# A 1 KB OpenAI-style chat answer.
make_body() {
  local pad
  pad=$(printf 'x%.0s' $(seq 1 802))
  printf '{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"%s"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":200,"total_tokens":209}}' "$pad" >"$1"
}

CHAT_REQUEST='{"model":"bench","messages":[{"role":"user","content":"benchmark"}]}'

# wrk_post URL CONNECTIONS SECONDS: prints "rps p50_us p99_us".
wrk_post() {
  cat >"$BENCH_DIR/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$CHAT_REQUEST'
wrk.headers["Content-Type"] = "application/json"
LUA
  local threads=${WRK_THREADS:-2}
  [[ $2 -lt 2 ]] && threads=1
  wrk -t"$threads" -c"$2" -d"$3"s --latency -s "$BENCH_DIR/post.lua" \
    "$1/v1/chat/completions" >"$BENCH_DIR/wrk.out"
  awk '
    function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return v*1000; if (v ~ /s$/) return v*1000000; return v }
    /Requests\/sec/ { rps=$2 }
    $1=="50%" { p50=us($2) }
    $1=="99%" { p99=us($2) }
    /Non-2xx/ { bad=$NF }
    END { printf "%d %.0f %.0f\n", rps, p50, p99; if (bad) print "bench: non-2xx answers: " bad > "/dev/stderr" }
  ' "$BENCH_DIR/wrk.out"
}
