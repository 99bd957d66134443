#!/usr/bin/env bash
# The main job, end to end on loopback: start a small OpenAI-style backend,
# record a few exchanges (one streamed) through `rewind record`, stop the
# backend, replay them with `rewind replay`, and show what happened.
#
# Usage: tools/demo/run.sh [--write-sample]
#   --write-sample  also save the recording as recordings/sample.sqlite
# Builds into build/ (or $REWIND_BUILD_DIR) first, showing the build's own
# progress: on a fresh machine installing and building take minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${REWIND_BUILD_DIR:-build}
echo "demo: checking the Debian packages rewind needs (installing what is missing takes a few minutes)"
tools/setup/deps.sh
echo "demo: building rewind into $build/ (the first build takes several minutes; cmake shows its progress; the tests are built by tools/test.sh)"
# Targets already up to date say so in a line each: not news.
tools/build.sh --demo | sed -u '/Built target/d; /Consolidate compiler generated/d'
echo "demo: built; running the demo"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Starts a command in the background; waits for "... listening on URL" on
# its stdout and sets $url to that URL.
start() {
  local name=$1; shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  for _ in $(seq 100); do
    if grep -q "listening on" "$work/$name.out" 2>/dev/null; then
      url=$(grep -o 'http://[0-9.:]*' "$work/$name.out" | head -1)
      return
    fi
    sleep 0.05
  done
  echo "demo: $name did not start:" >&2
  cat "$work/$name.err" >&2
  exit 1
}

stop_last() {
  kill -TERM "${pids[-1]}"
  wait "${pids[-1]}" || true
  unset 'pids[-1]'
}

chat() {  # URL CONTENT STREAM -> prints X-Rewind, status and timings
  curl -sS -o "$work/body" -D "$work/headers" \
    -w 'status %{http_code}  headers %{time_starttransfer}s  total %{time_total}s' \
    "$1/v1/chat/completions" -H 'Content-Type: application/json' \
    -H 'Authorization: Bearer sk-demo-not-a-real-key' \
    -d "{\"model\":\"demo-model\",\"stream\":$3,\"messages\":[{\"role\":\"user\",\"content\":\"$2\"}]}"
  printf '  X-Rewind: %s\n' "$(grep -i '^x-rewind:' "$work/headers" | cut -d' ' -f2 | tr -d '\r')"
}

db="$work/demo.sqlite"
start backend "$build/rewind-demo-backend" --port 0 --ttft-ms 40 --itl-ms 15 --tokens 12
backend=$url
echo "1. demo backend at $backend"
start record "$build/rewind" record --backend "$backend" --db "$db" --listen 127.0.0.1:0
proxy=$url
echo "2. rewind record at $proxy, writing $db"
for q in "What is the capital of France?" "Name a prime number."; do
  printf '   record  %-32s ' "\"$q\""; chat "$proxy" "$q" false
done
printf '   record  %-32s ' "(streamed, 13 SSE events)"; chat "$proxy" "Tell me a story." true
stop_last   # rewind record: drains and commits
stop_last   # the backend is gone from here on
echo "3. backend stopped; $(sqlite3 "$db" 'select count(*) from exchanges') exchanges recorded:"
sqlite3 -header -column "$db" "select id, method, path, status, headers_us/1000 as headers_ms, total_us/1000 as total_ms, length(timeline)/16 as chunks from exchanges"
if grep -q "sk-demo-not-a-real-key" "$db"; then echo "demo: secret on disk!" >&2; exit 1; fi
echo "   (the Authorization header is stored as [REDACTED])"

start replay "$build/rewind" replay --db "$db" --listen 127.0.0.1:0 --latency recorded
replay=$url
echo "4. rewind replay at $replay (latency: recorded), no backend running"
for q in "What is the capital of France?" "Name a prime number."; do
  printf '   replay  %-32s ' "\"$q\""; chat "$replay" "$q" false
done
printf '   replay  %-32s ' "(streamed, same pacing)"; chat "$replay" "Tell me a story." true
printf '   replay  %-32s ' "(unrecorded question)"; chat "$replay" "What is the capital of Spain?" false
echo "   the miss answer names the nearest recording:"
sed 's/^/     /' "$work/body"
stop_last

sample=recordings/sample.sqlite
if [[ "${1:-}" == "--write-sample" ]]; then
  sqlite3 "$db" "PRAGMA journal_mode=DELETE; VACUUM;" >/dev/null
  cp "$db" "$sample"
  echo "5. wrote $sample"
else
  start sample "$build/rewind" replay --db "$sample" --listen 127.0.0.1:0 --latency none
replay=$url
  echo "5. the bundled $sample, replayed with --latency none:"
  printf '   replay  %-32s ' "\"What is the capital of France?\""; chat "$replay" "What is the capital of France?" false
  printf '   answer: %s\n' "$(grep -o '"content":"[^"]*"' "$work/body")"
  stop_last
fi
echo "demo: done"
