#!/usr/bin/env bash
# Runs the official npm clients against `rewind serve`, then through
# `rewind record` in front of serve, then from `rewind replay` with serve
# stopped, and prints what each call returned, one line per call:
#
#   openai@V   the `openai` client (openai_check.mjs: chat, chat streamed,
#              responses.create, responses.stream, tools on both APIs,
#              structured output, embeddings, an unknown model)
#   ai@V       the Vercel AI SDK, `ai` with `@ai-sdk/openai` (ai_sdk_check.mjs:
#              the default provider, which calls /v1/responses, and .chat;
#              generateText, streamText, a zod tool called and answered, a
#              streamed tool call, generateObject, embed and embedMany)
#   dialects   `@anthropic-ai/sdk` and `ollama` (dialects.mjs)
#
# Every client ends with a prompt never recorded: the replay run shows the
# miss as that client shows it.
#
#   tools/clients/all.sh [CLIENT ...]   # default: openai@4 openai@latest ai@6 ai@latest dialects
#
# The clients are installed with npm at run time into a cache directory
# (REWIND_CLIENTS_CACHE, default ~/.cache/rewind-clients), once per version
# (a `latest` once a day); when npm's registry is unreachable, a client not
# installed before is skipped with a message. REWIND_BIN names the rewind binary
# (default build/rewind). Needs node >= 18 and npm. Exits 0 when replay
# answered every recorded call exactly as record did, every call but the
# deliberate errors succeeded, and every client showed rewind's explanation
# of the miss; 1 otherwise; 2 when it could not run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${REWIND_BIN:-$root/build/rewind}
cache=${REWIND_CLIENTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rewind-clients}
requested=("$@")
[[ ${#requested[@]} -gt 0 ]] || requested=(openai@4 openai@latest ai@6 ai@latest dialects)

command -v node >/dev/null || { echo "all.sh: node is not installed" >&2; exit 2; }
command -v npm >/dev/null || { echo "all.sh: npm is not installed" >&2; exit 2; }
[[ -x $bin ]] || { echo "all.sh: no rewind binary at $bin (build first, or set REWIND_BIN)" >&2; exit 2; }

# Each client: a cache directory, the packages it needs, its script and
# whether it takes the /v1 base URL or the bare one.
names=() dirs=() scripts=() bases=() registry=
for client in "${requested[@]}"; do
  case $client in
    openai@*)
      v=${client#openai@}
      dir=$cache/openai-$v script=openai_check.mjs base=/v1
      packages=("openai@$v" "zod@3") ;;  # zod 3: both majors accept it
    ai@*)
      v=${client#ai@}
      dir=$cache/ai-$v script=ai_sdk_check.mjs base=/v1
      # @ai-sdk/openai's major is ai's minus 3 (ai 6 goes with @ai-sdk/openai 3).
      if [[ $v =~ ^[0-9]+$ ]]; then provider=$((v - 3)); else provider=$v; fi
      packages=("ai@$v" "@ai-sdk/openai@$provider" "zod") ;;
    dialects)
      dir=$cache/dialects script=dialects.mjs base=
      packages=("@anthropic-ai/sdk" "ollama") ;;
    *)
      echo "all.sh: unknown client $client (openai@VERSION, ai@VERSION or dialects)" >&2
      exit 2 ;;
  esac
  stamp=$dir/.installed
  if [[ ! -f $stamp || $client == *@latest && -n $(find "$stamp" -mtime +0) ]]; then
    if [[ -z $registry ]]; then  # asked once, before the first install
      registry=reachable
      timeout 60 npm ping --fetch-retries=0 --fetch-timeout=20000 >/dev/null 2>&1 || registry=unreachable
    fi
    if [[ $registry == unreachable && -f $stamp ]]; then
      echo "== npm's registry is unreachable: $client as installed before"
    elif [[ $registry == unreachable ]]; then
      echo "== skipping $client: npm's registry is unreachable and it is not installed in $dir"
      continue
    else
      echo "== installing ${packages[*]} into $dir"
      mkdir -p "$dir"
      [[ -f $dir/package.json ]] || echo '{"name":"rewind-client-check","private":true,"type":"module"}' >"$dir/package.json"
      if ! timeout 300 npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
          "${packages[@]}" >/dev/null 2>"$dir/npm.err"; then
        echo "== npm could not install ${packages[*]}:" >&2
        cat "$dir/npm.err" >&2
        exit 2
      fi
      touch "$stamp"
    fi
  fi
  cp "$here/$script" "$dir/$script"
  names+=("$client") dirs+=("$dir") scripts+=("$script") bases+=("$base")
done
if [[ ${#dirs[@]} -eq 0 ]]; then
  echo "== no client could be installed; nothing was checked"
  exit 0
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME ARGS...: starts rewind in the background; sets $port.
start() {
  local name=$1
  shift
  "$bin" "$@" --listen 127.0.0.1:0 --quiet >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  eval "${name}_pid=$!"
  port=
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/$name.out")
    [[ -n $port ]] && return 0
    sleep 0.1
  done
  echo "all.sh: rewind $name did not start:" >&2
  cat "$work/$name.err" >&2
  exit 2
}

# stop PID: SIGTERM, then wait for it to exit.
stop() {
  kill -TERM "$1"
  wait "$1" 2>/dev/null || true
}

run_clients() {  # run_clients LABEL URL
  local i rc
  for i in "${!dirs[@]}"; do
    rc=0
    (cd "${dirs[$i]}" && node "${scripts[$i]}" "$2${bases[$i]}" "$1") | tee -a "$work/$1.log" || rc=$?
    if [[ $rc != 0 ]]; then
      echo "$1 ${names[$i]}: ERROR ${scripts[$i]} exited with status $rc" | tee -a "$work/$1.log"
    fi
  done
}

# One engine for every client: the OpenAI models are named (an unknown one
# gets 404 model_not_found); the Anthropic and Ollama endpoints take any.
start serve serve --seed 7 --output random --ttft fixed:40 --itl fixed:4 \
  --model gpt-4o-mini --model text-embedding-3-small --tool-rate 0.5
serve_port=$port
echo "== rewind serve on 127.0.0.1:$serve_port"
run_clients serve "http://127.0.0.1:$serve_port"

start record record --backend "http://127.0.0.1:$serve_port" --db "$work/clients.sqlite"
echo "== rewind record on 127.0.0.1:$port, in front of serve"
run_clients record "http://127.0.0.1:$port"
stop "$record_pid"
stop "$serve_pid"
echo "== serve and record stopped; $("$bin" ls --db "$work/clients.sqlite" --json | grep -o '"id":' | wc -l) exchanges recorded"

start replay replay --db "$work/clients.sqlite"
echo "== rewind replay on 127.0.0.1:$port, serve stopped"
run_clients replay "http://127.0.0.1:$port"
stop "$replay_pid"

status=0
# Replay must answer every recorded call as record did (timings and the
# deliberately unrecorded prompts aside).
strip() { sed -e 's/^[a-z]* //' -e 's/  \[[0-9]* ms\]$//' "$1" | grep -v ' unrecorded prompt:'; }
if diff <(strip "$work/record.log") <(strip "$work/replay.log") >"$work/diff"; then
  echo "== replay answered every recorded call exactly as record did ($(strip "$work/replay.log" | wc -l) calls)"
else
  echo "== replay differs from record:"
  cat "$work/diff"
  status=1
fi
# No call may fail but the deliberate ones: an unknown model, and the
# unrecorded prompts on replay.
failed=$(cat "$work"/{serve,record,replay}.log |
  grep -E ': ERROR |INVALID|DIFFER' | grep -v -e ' unknown model: ERROR ' -e '^replay .* unrecorded prompt: ERROR ' || true)
if [[ -n $failed ]]; then
  echo "== calls that failed:"
  echo "$failed"
  status=1
fi
# Each client must show rewind's explanation of a miss as its error.
echo "== the miss as each client shows it:"
while IFS= read -r line; do
  if [[ $line == *"no recorded response for POST"*"nearest recording is #"* ]]; then
    echo "   $line"
  else
    echo "   WITHOUT rewind's explanation: $line"
    status=1
  fi
done < <(grep '^replay .* unrecorded prompt:' "$work/replay.log")
exit $status
