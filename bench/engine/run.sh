#!/usr/bin/env bash
# Integration engine: how many (source × probe patient) re-integrations one Vitals process
# handles per minute, and the CPU per comparison, beside the anchor — the same loop in Python
# (bench/engine/anchor.py) — in the same run, against the same loopback sources and catalogue.
#
# One comparison = HTTP GET of the patient from its source (FHIR-like JSON, a fresh request on
# a pooled connection), the catalogue's copy from SQLite, three fields normalised and compared,
# the run recorded in the engine's file. The sources are served by a separate process
# (`engine_bench serve`), so only the prober's own CPU (getrusage of its process) is counted.
#
#   bench/engine/run.sh                          # ~1 min: 500 sources × 2 probe patients
#   SOURCES=2000 K=1 SECONDS_=30 bench/engine/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
SOURCES=${SOURCES:-500}
K=${K:-2}
SECONDS_=${SECONDS_:-20}

cd "$root"
cargo build -q --release -p vitals-engine --example engine_bench
bin="$root/target/release/examples/engine_bench"
tmp=$(mktemp -d)
server=""
cleanup() {
    if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill "$server"; wait "$server" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $SOURCES sources × $K probe patients, ${SECONDS_}s each side"
"$bin" serve "$tmp" "$SOURCES" "$K" >"$tmp/serve.out" 2>"$tmp/serve.err" &
server=$!
for _ in $(seq 1 300); do
    [ -s "$tmp/serve.out" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$tmp/serve.err"; exit 1; }
    sleep 0.1
done
url=$(head -1 "$tmp/serve.out")

"$bin" probe "$tmp" "$url" "$SOURCES" "$K" "$SECONDS_" | tee "$tmp/vitals.out"
python3 "$root/bench/engine/anchor.py" "$tmp/catalogue.sqlite" "$url" "$K" "$SECONDS_" | tee "$tmp/anchor.out"

get() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
v_min=$(get "$tmp/vitals.out" per_minute); a_min=$(get "$tmp/anchor.out" per_minute)
v_cpu=$(get "$tmp/vitals.out" cpu_us_per_comparison); a_cpu=$(get "$tmp/anchor.out" cpu_us_per_comparison)
echo "vitals: $v_min comparisons/min, $v_cpu µs CPU per comparison"
echo "anchor (Python, 16 threads): $a_min comparisons/min, $a_cpu µs CPU per comparison"
awk -v a="$v_min" -v b="$a_min" -v c="$v_cpu" -v d="$a_cpu" 'BEGIN {
    printf "ratio: %.1f× the comparisons per minute, %.1f× less CPU per comparison\n", a / b, d / c }'
