#!/usr/bin/env bash
# Runs every benchmark (about 9 minutes on 2 cores) and writes
# tools/bench/RESULTS.md: each goal beside what was measured.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=tools/bench/RESULTS.md
{
  echo "# Benchmark results"
  echo
  echo "Made by \`tools/bench/all.sh\` on $(nproc) cores, $(date -u +%Y-%m-%d)."
  echo "Peers run in the same run; ratios matter more than absolute numbers."
  echo
  echo "## Replay throughput (goal: >= 0.7x nginx at 32 connections)"
  bash tools/bench/replay_throughput.sh 5
  echo
  echo "## Against the peers users pick instead (WireMock, talkback; replay >= each at every concurrency, record >= 2x the fastest)"
  bash tools/bench/peers.sh 5
  echo
  echo "## Record overhead (goals: p50 added <= 150 us at 1 connection; >= 0.5x direct at 32)"
  bash tools/bench/record_overhead.sh 5
  echo
  echo "## Record write rate (goal: >= 10,000 exchanges/s at 32 connections, none lost at SIGKILL)"
  bash tools/bench/write_rate.sh 5
  echo
  echo "## Timing fidelity and capacity (goals: p99 <= 0.5 / 1 / 3 ms at 1 / 100 / 1,000 streams; 1,000 streams >= 0.95 of the ideal rate, RSS <= 100 MB)"
  echo '```'
  bash tools/bench/fidelity.sh
  echo '```'
  echo
  echo "## 10,000 streams with default settings (goals: 0 failed, >= 0.9x the ideal rate, p99 stream time <= 1.15x alone, p99 chunk offset <= 2 ms, RSS <= 150 MB)"
  echo '```'
  bash tools/bench/streams.sh 10000
  echo '```'
  echo
  echo "## Scale (goals: start-up <= 3 s, RSS <= 300 MB, hit throughput within 10 %)"
  bash tools/bench/scale.sh 1000000 5
  echo
  echo "## Instructions per replayed request (callgrind; lower is better)"
  bash tools/bench/instructions.sh 2000
} | tee "$out"
