#!/usr/bin/env bash
# P7 (alert latency: deciding observation stored → webhook received, p99 ≤ 200 ms) and the alert
# storm (a down parent suppresses 1,000 children; group_wait = "2s" merges a storm into one
# notification). Everything runs on loopback: `vitals serve` (one fresh instance per scenario)
# and a webhook receiver inside alerts_bench.py, which timestamps both ends with one clock.
# Anchor (printed as context, not run): Prometheus + Alertmanager defaults, evaluation interval
# + group_wait 30 s. See ../shared/spec/performance.md.
#
# Usage: bench/alerts/run.sh
# Environment (all optional):
#   VITALS_BIN=path  vitals binary to use instead of `cargo build --release -p vitals`
#   KEEP_TMP=1       keep the temp dir (per scenario: config, vitals.log, SQLite file)
#   N=300          P7 samples (sequential, 20 ms apart)
#   LEAVES=1000    children in the storm scenarios
#   WINDOW=10      seconds during which webhook POSTs are counted per storm scenario
set -euo pipefail
# No __pycache__ beside the scripts in the work tree.
export PYTHONDONTWRITEBYTECODE=1

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(git -C "$HERE" rev-parse --show-toplevel)

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}
command -v python3 >/dev/null 2>&1 || die "python3 is required (apt-get install python3)"
printf 'machine: %s cores, load average %s (other work on the same cores skews absolute figures)\n' \
    "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"

VITALS_BIN=${VITALS_BIN:-${VITALS:-}}
if [[ -n "$VITALS_BIN" ]]; then
    BIN=$VITALS_BIN
else
    printf 'building target/release/vitals (cargo does nothing when it is up to date) ...\n' >&2
    (cd "$ROOT" && cargo build --release -q -p vitals)
    BIN="$ROOT/target/release/vitals"
fi
[[ -x $BIN ]] || die "vitals binary $BIN not found"
# A private copy, so a rebuild by someone else during the run cannot swap it under us.
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vitals-alerts-bench.XXXXXX")
if [[ ${KEEP_TMP:-0} == 1 ]]; then
    trap 'printf "kept %s\n" "$TMP" >&2' EXIT
else
    trap 'rm -rf "$TMP"' EXIT
fi
cp "$BIN" "$TMP/vitals"

python3 "$HERE/alerts_bench.py" --vitals "$TMP/vitals" --workdir "$TMP" --n "${N:-300}" \
    --leaves "${LEAVES:-1000}" --window "${WINDOW:-10}"
