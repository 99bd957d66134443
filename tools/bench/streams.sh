#!/usr/bin/env bash
# 10,000 concurrent SSE streams with rewind's default settings: from the
# dummy engine (`rewind serve`, TTFT 1 s, ITL 500 ms, 10 tokens: 5.5 s a
# stream) and from a replayed recording (10 events over 5 s). The streams
# open evenly over 2 s, so all 10,000 are in flight at once. Goals: every
# stream completes (0 failed), at >= 0.9x the ideal rate, p99 stream time
# <= 1.15x one stream alone, each chunk within 2 ms of its schedule at p99,
# peak RSS <= 150 MB. Definitions in tools/bench/stream_fidelity.cc.
# Loopback only; about 40 s. Needs an open-file limit above 20,000 for the
# client side (raised here as far as the hard limit allows).
# Usage: tools/bench/streams.sh [STREAMS, default 10000] [REWIND, default build/rewind]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-10000}
rewind=${2:-build/rewind}
[[ -x build/rewind-bench-fidelity ]] || tools/build.sh >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
run() { build/rewind-bench-fidelity --rewind "$rewind" --defaults 1 "$@" 2>/dev/null; }
run --streams "$n" --serve 1 --ttft-ms 1000 --itl-ms 500 --ramp-ms 2000
run --streams "$n" --events 10 --duration-ms 5000 --ramp-ms 2000
