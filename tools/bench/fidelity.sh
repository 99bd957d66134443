#!/usr/bin/env bash
# Timing fidelity and capacity of `rewind replay` for 1, 100 and 1,000
# concurrent streams of a recorded 1-second, 20-event SSE answer.
# Prints one line per run; see tools/bench/stream_fidelity.cc for the
# definitions. Loopback only; about 10 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/build.sh >/dev/null
for n in 1 100 1000; do
  build/rewind-bench-fidelity --rewind build/rewind --streams "$n" 2>/dev/null
done
echo "scaled:0.5, 100 streams:"
build/rewind-bench-fidelity --rewind build/rewind --streams 100 --scale 0.5 2>/dev/null
