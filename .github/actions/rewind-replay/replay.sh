#!/usr/bin/env bash
# The steps of the rewind-replay action (action.yml beside this file), one
# subcommand each; GitHub Actions runs them, and so does
# tests/scripts/github_action_test.py, which executes the action's YAML.
#
#   replay.sh install-build    build rewind from this repository (cmake) and
#                              install it under $RUNNER_TEMP/rewind (on PATH)
#   replay.sh install-package  build the Debian package (tools/package.sh)
#                              and install it with apt-get
#   replay.sh start            start `rewind replay --strict` on $RECORDING,
#                              in the background; export REWIND_URL
#   replay.sh stop             SIGTERM it; print its verdict; exit 1 if a
#                              request missed (or, with require-all, a
#                              recording was never served)
#
# Inputs come as environment variables: RECORDING, REWIND_BIN, BUILD_DIR,
# REPLAY_ARGS, REQUIRE_ALL, URL_ENV, URL_PATH, START_TIMEOUT.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
temp=${RUNNER_TEMP:-${TMPDIR:-/tmp}}
state=${REWIND_STATE:-$temp/rewind-replay}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

case ${1:-} in
  install-build)
    bash "$src/tools/setup/deps.sh" --release
    dir=${BUILD_DIR:-$temp/rewind-build}
    # A build directory kept from an earlier run (actions/cache) is reused
    # as it is configured.
    if [[ ! -f $dir/CMakeCache.txt ]]; then
      cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DREWIND_BUILD_TESTS=OFF >/dev/null
    fi
    cmake --build "$dir" --target rewind -j "$(nproc)"
    cmake --install "$dir" --prefix "$temp/rewind" >/dev/null
    echo "$temp/rewind/bin" >>"$GITHUB_PATH"
    echo "rewind-replay: installed $("$temp/rewind/bin/rewind" --version) in $temp/rewind/bin"
    ;;

  install-package)
    deb=$(bash "$src/tools/package.sh" "$temp/rewind-package" | tail -n 1)
    as_root apt-get install -y -q --no-install-recommends "$deb"
    echo "rewind-replay: installed $(rewind --version) from $(basename "$deb")"
    ;;

  start)
    : "${RECORDING:?the recording input is required}"
    bin=${REWIND_BIN:-$(command -v rewind || true)}
    [[ -n $bin && -x $bin ]] || {
      echo "rewind-replay: no rewind binary (install: build or package, or give bin)" >&2
      exit 2
    }
    [[ -f $RECORDING ]] || { echo "rewind-replay: no recording at $RECORDING" >&2; exit 2; }
    # The later steps find this rewind as `rewind` whichever way it came.
    if [[ $bin != "$temp/rewind/bin/rewind" && $(command -v rewind || true) != "$bin" ]]; then
      mkdir -p "$temp/rewind/bin"
      ln -sf "$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")" "$temp/rewind/bin/rewind"
      echo "$temp/rewind/bin" >>"$GITHUB_PATH"
    fi
    rm -rf "$state"
    mkdir -p "$state"
    flags=(--strict --report "$state/report.json" --quiet)
    [[ ${REQUIRE_ALL:-false} == true ]] && flags+=(--require-all)
    read -r -a extra <<<"${REPLAY_ARGS:-}"
    # rewind outlives this step: its own session, its exit code kept in
    # $state/rc for the stop step.
    setsid bash -c '"$@" >"$0/out" 2>"$0/err" </dev/null & echo $! >"$0/pid"; wait $!; echo $? >"$0/rc"' \
      "$state" "$bin" replay --db "$RECORDING" --listen 127.0.0.1:0 --port-file "$state/port" \
      "${flags[@]}" "${extra[@]}" </dev/null >/dev/null 2>&1 &
    deadline=$((SECONDS + ${START_TIMEOUT:-60}))
    until [[ -s $state/port && $(tail -c 1 "$state/port") == "" ]]; do
      if [[ -f $state/rc ]]; then
        echo "rewind-replay: rewind replay exited with $(cat "$state/rc") before listening:" >&2
        cat "$state/err" >&2
        exit 2
      fi
      if ((SECONDS > deadline)); then
        echo "rewind-replay: rewind replay did not start within ${START_TIMEOUT:-60} s:" >&2
        cat "$state/err" >&2
        exit 2
      fi
      sleep 0.05
    done
    url="http://127.0.0.1:$(cat "$state/port")"
    {
      echo "REWIND_URL=$url"
      echo "REWIND_STATE=$state"
      [[ -z ${URL_ENV:-} ]] || echo "$URL_ENV=$url${URL_PATH:-}"
    } >>"$GITHUB_ENV"
    {
      echo "url=$url"
      echo "port=$(cat "$state/port")"
    } >>"$GITHUB_OUTPUT"
    echo "rewind-replay: replaying $RECORDING at $url (REWIND_URL${URL_ENV:+, $URL_ENV=$url${URL_PATH:-}})"
    ;;

  stop)
    [[ -f $state/pid ]] || { echo "rewind-replay: no replay was started (no $state/pid)" >&2; exit 2; }
    pid=$(cat "$state/pid")
    [[ -f $state/rc ]] || kill -TERM "$pid" 2>/dev/null || true
    # --drain-timeout (30 s) bounds rewind's own wait for in-flight requests.
    for _ in $(seq 1 900); do
      [[ -f $state/rc ]] && break
      sleep 0.05
    done
    if [[ ! -f $state/rc ]]; then
      echo "rewind-replay: rewind replay (pid $pid) did not stop; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      exit 2
    fi
    rc=$(cat "$state/rc")
    # What rewind said (--quiet: no access lines): each miss explained, then
    # the verdict, "rewind: N requests, H hits, M misses, U unused recordings".
    cat "$state/err"
    if [[ -n ${GITHUB_STEP_SUMMARY:-} ]]; then
      printf '### rewind replay\n```\n%s\n```\n' "$(cat "$state/err")" >>"$GITHUB_STEP_SUMMARY"
    fi
    case $rc in
      0) echo "rewind-replay: the replay's verdict is a pass (report: $state/report.json)" ;;
      1) echo "rewind-replay: failing the job: the replay's verdict is a fail (above; report: $state/report.json)" >&2 ;;
      *) echo "rewind-replay: rewind replay exited with $rc" >&2 ;;
    esac
    exit "$rc"
    ;;

  *)
    echo "usage: replay.sh install-build|install-package|start|stop" >&2
    exit 2
    ;;
esac
