#!/usr/bin/env bash
# Timing fidelity and capacity of `rewind replay` for 1, 100 and 1,000
# concurrent streams of a recorded 1-second, 20-event SSE answer, and what
# `rewind record` adds to each chunk when it sits in front (the replay
# server then plays the backend). One line per run; definitions in
# tools/bench/stream_fidelity.cc. Loopback only; about 15 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/build.sh >/dev/null
run() { build/rewind-bench-fidelity --rewind build/rewind "$@" 2>/dev/null; }
for n in 1 100 1000; do run --streams "$n"; done
run --streams 100 --scale 0.5
for n in 1 100; do run --streams "$n" --via-record 1; done
