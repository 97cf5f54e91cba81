#!/usr/bin/env bash
# P6: the web UI's overview: p99 < 20 ms at 10,000 assets and < 50 ms at 100,000 (N=100000)
# with 16 concurrent clients, page < 200 KB compressed. Starts a fresh `vitals serve` on loopback, pushes N assets
# through the batch API (a mix of statuses, so the page sorts and badges real data), then runs
# `wrk -c16 -t2 -d10s --latency` with gzip on `/` and prints p50/p99 and the compressed size.
#
# Usage: bench/ui/run.sh
# Environment (all optional):
#   VITALS_BIN=path  vitals binary to use instead of `cargo build --release -p vitals`
#   N=10000          assets
#   DURATION=10      wrk seconds
#   ROUNDS=1         results pushed per asset (50 fills every "last 50" bar, with a status that
#                    changes now and then, so bars have several runs to draw)
#   KEEP_TMP=1       keep the temp dir (config, vitals.log, SQLite file)
#   LIVE=1           push a result every 50 ms while wrk runs (the page changes at each commit)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(git -C "$HERE" rev-parse --show-toplevel)
N=${N:-10000}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-1}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}
for c in wrk curl python3; do
    command -v "$c" >/dev/null 2>&1 || die "$c is required"
done
printf 'machine: %s cores, load average %s (other work on the same cores skews absolute figures)\n' \
    "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"

if [[ -n "${VITALS_BIN:-}" ]]; then
    BIN=$VITALS_BIN
else
    printf 'building target/release/vitals (cargo does nothing when it is up to date) ...\n' >&2
    (cd "$ROOT" && cargo build --release -q -p vitals)
    BIN="$ROOT/target/release/vitals"
fi
[[ -x $BIN ]] || die "vitals binary $BIN not found"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vitals-ui-bench.XXXXXX")
VPID=
cleanup() {
    [[ -n $VPID ]] && kill "$VPID" 2>/dev/null && wait "$VPID" 2>/dev/null
    if [[ ${KEEP_TMP:-0} == 1 ]]; then printf 'kept %s\n' "$TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
# A private copy, so a rebuild by someone else during the run cannot swap it under us.
cp "$BIN" "$TMP/vitals"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$TMP/vitals.toml" <<TOML
[server]
data_dir = "$TMP/data"
self_check = false

[ingest]
# Pushed results create the assets; the default cap (10,000) is below the larger runs.
max_assets = $((N + 1000))
TOML
"$TMP/vitals" serve --config "$TMP/vitals.toml" --listen "127.0.0.1:$port" >"$TMP/vitals.log" 2>&1 &
VPID=$!
URL="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$URL/monitor" 2>/dev/null && break
    kill -0 "$VPID" 2>/dev/null || die "vitals did not start: $(tail -5 "$TMP/vitals.log")"
    sleep 0.1
done
curl -fsS -o /dev/null "$URL/monitor" || die "vitals did not answer on $URL"

# N assets in batches of 1,000: about 1 % crit, 3 % warn, 1 % unknown, the rest ok.
# With ROUNDS > 1, earlier rounds come first (1 ms apart per round), and every 7th result of
# an asset is "warn" — the last round is the one above, so the page sorts the same.
python3 - "$URL" "$N" "$ROUNDS" <<'PY'
import json, sys, time, urllib.request
url, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def status(i):
    return "crit" if i % 100 == 0 else "warn" if i % 100 < 4 else "unknown" if i % 100 == 4 else "ok"
now = int(time.time() * 1000)
for rnd in range(rounds):
    last = rnd == rounds - 1
    for start in range(0, n, 1000):
        results = []
        for i in range(start, min(n, start + 1000)):
            s = status(i) if last else ("warn" if (i + rnd) % 7 == 0 else "ok")
            results.append({"asset": "node-%05d" % i, "check": "http", "status": s,
                            "reason": "" if s == "ok" else "HTTP 503 from upstream",
                            "values": {"total_ms": 10 + i % 50},
                            "time": now - (rounds - rnd) * 1000})
        req = urllib.request.Request(url + "/api/v1/results", data=json.dumps({"results": results}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            assert r.status == 200, r.status
PY
count=$(curl -fsS "$URL/ui/events" | python3 -c 'import json,sys; print(sum(json.load(sys.stdin)["counts"].values()))')
[[ $count -ge $N ]] || die "only $count assets are live"
printf 'assets live: %s\n' "$count"

size_gz=$(curl -fsS --compressed -o /dev/null -w '%{size_download}' "$URL/")
size_raw=$(curl -fsS -o /dev/null -w '%{size_download}' "$URL/")
rows=$(curl -fsS "$URL/" | grep -o '<tr data-asset=' | wc -l)
printf 'overview page: %s bytes gzip (%s uncompressed), %s rows shown\n' "$size_gz" "$size_raw" "$rows"

# LIVE=1: results keep arriving while wrk runs (one commit every 50 ms, each a new state), so
# the page is made again at every commit instead of being reused.
PUSHER=
if [[ ${LIVE:-0} == 1 ]]; then
    (
        end=$((SECONDS + DURATION + 1))
        i=0
        while ((SECONDS < end)); do
            s=$([[ $((i % 3)) == 0 ]] && echo crit || echo ok)
            curl -fsS -o /dev/null -H 'Content-Type: application/json' \
                -d "{\"results\":[{\"asset\":\"node-$(printf %05d $((i % N)))\",\"check\":\"http\",\"status\":\"$s\"}]}" \
                "$URL/api/v1/results" || true
            i=$((i + 1))
            sleep 0.05
        done
    ) &
    PUSHER=$!
fi
gen0=$(curl -fsS "$URL/api/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pipeline"]["observations_stored"])')
wrk -c16 -t2 -d"${DURATION}s" --latency -H 'Accept-Encoding: gzip' "$URL/" >"$TMP/wrk.txt" 2>&1 ||
    die "wrk failed: $(cat "$TMP/wrk.txt")"
[[ -n $PUSHER ]] && wait "$PUSHER"
gen1=$(curl -fsS "$URL/api/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pipeline"]["observations_stored"])')
printf 'results stored while wrk ran: %s (LIVE=%s)\n' "$((gen1 - gen0))" "${LIVE:-0}"
p50=$(awk '$1 == "50%" {print $2}' "$TMP/wrk.txt")
p99=$(awk '$1 == "99%" {print $2}' "$TMP/wrk.txt")
rps=$(awk '/Requests\/sec/ {print $2}' "$TMP/wrk.txt")
errors=$(grep -E 'Non-2xx|Socket errors' "$TMP/wrk.txt" || true)
printf 'P6 overview of %s assets, wrk -c16 -t2 -d%ss (gzip): p50 %s, p99 %s, %s req/s\n' \
    "$count" "$DURATION" "$p50" "$p99" "$rps"
[[ -z $errors ]] || printf 'wrk reported: %s\n' "$errors"
target=$((N >= 100000 ? 50 : 20))
p99_ms=$(awk -v v="$p99" 'BEGIN { if (v ~ /us$/) print v / 1000; else if (v ~ /ms$/) print v + 0; else print v * 1000 }')
printf 'P6 target: p99 < %s ms at %s assets: %s; page < 200 KB (204800 bytes) compressed: %s\n' "$target" "$count" \
    "$(awk -v a="$p99_ms" -v b="$target" 'BEGIN { print (a < b ? "met" : "MISSED") }')" \
    "$( ((size_gz < 204800)) && echo met || echo MISSED)"
printf 'P6 anchors (context, performance.md): Uptime Kuma 15 s dashboard loads at 882 monitors; Gatus 25 s statuses API at 292 endpoints\n'
