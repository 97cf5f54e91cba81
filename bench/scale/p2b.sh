#!/usr/bin/env bash
# P2b — 100,000 HTTP checks every 60 s (1,667 probes/s) against a private nginx on loopback:
# < 50 % of one core, RSS < 500 MB, 0 skipped ticks (../shared/spec/performance.md). The same
# sampler as P2 (bench/scale/run.sh) with P2b's size and targets; no peer runs this many checks
# on one machine, so there is no anchor to run beside it.
#
# Usage: bench/scale/p2b.sh [DURATION_SECONDS]      (default 300)
# Environment: as bench/scale/run.sh (WARMUP defaults to 70 here: one whole interval, since the
# first runs are spread over it).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LABEL=P2b CHECKS=${CHECKS:-100000} INTERVAL=${INTERVAL:-60s} TIMEOUT=${TIMEOUT:-5s}
export WARMUP=${WARMUP:-70} MAX_CONCURRENCY=${MAX_CONCURRENCY:-1024}
export TARGET_CPU=${TARGET_CPU:-50} TARGET_RSS=${TARGET_RSS:-500} TARGET_P99=${TARGET_P99:-250}
exec "$HERE/run.sh" "$@"
