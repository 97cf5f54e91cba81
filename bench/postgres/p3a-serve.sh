#!/usr/bin/env bash
# P3a through `vitals serve` on PostgreSQL beside SQLite: POST /api/v1/results with batches of
# 500 (bench/ingest/batch.lua, wrk -t2 -c8) for DURATION seconds against a fresh SQLite store,
# then against a fresh PostgreSQL database — the whole path (HTTP, pipeline, one commit per
# round, on PostgreSQL also the replicas' feed entry) — and the rates side by side. Results are
# counted back from /api/v1/status (pipeline.observations_stored).
# Needs wrk and PostgreSQL on 127.0.0.1:5432 with trust auth for `postgres`
# (or VITALS_BENCH_PG_ADMIN=postgres://user:pw@host/postgres). DURATION=10 by default.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-10}
CONNS=${CONNS:-8}
ADMIN=${VITALS_BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
DB=vitals_bench_p3a_$$
command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
BIN=${VITALS_BIN:-$ROOT/target/release/vitals}
[ -x "$BIN" ] || cargo build --release -q -p vitals
TMP=$(mktemp -d)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; wrk -t2 -c$CONNS -d${DURATION}s, batches of 500"

stored() { curl -fsS "$1/api/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pipeline"]["observations_stored"])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # $1 name, $2 store line (or empty)
    local dir="$TMP/$1" port url before after cpu0 cpu
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # The heart score of bench/ingest (batch.lua's results carry a heart rate, no status).
    cat >"$dir/vitals.toml" <<EOF
[server]
data_dir = "$dir/data"
self_check = false
$2

[ingest]
max_assets = 100000   # batch.lua's bodies name 20,000 assets

[[score]]
test = "heart"
groups = ["doctor"]
field = "heartrate"
kind = "int"
rules = [{ above = 120, score = 4 }, { above = 100, score = 3 }, { above = 80, score = 2 }, { score = 1 }]
EOF
    "$BIN" serve --config "$dir/vitals.toml" --listen "127.0.0.1:$port" >"$dir/log" 2>&1 &
    PID=$!
    url="http://127.0.0.1:$port"
    for _ in $(seq 100); do curl -fsS "$url/monitor" >/dev/null 2>&1 && break; sleep 0.2; done
    # A replica decides once it holds the lease (at once on a fresh database).
    for _ in $(seq 50); do
        curl -fsS "$url/api/v1/status" | grep -q '"cluster":null\|"decider":true' && break
        sleep 0.2
    done
    before=$(stored "$url")
    cpu0=$(cpu_ticks "$PID")
    wrk -t2 -c"$CONNS" -d"${DURATION}s" -s bench/ingest/batch.lua "$url" >"$dir/wrk.txt" 2>&1
    sleep 0.5
    after=$(stored "$url")
    cpu=$(($(cpu_ticks "$PID") - cpu0))
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
    python3 - "$1" "$before" "$after" "$cpu" "$DURATION" "$(getconf CLK_TCK)" "$dir/wrk.txt" <<'PY'
import re, sys
name, before, after, cpu, dur, tck, wrk = sys.argv[1:]
n = int(after) - int(before)
text = open(wrk).read()
bad = sum(int(x) for x in re.findall(r'(?:Non-2xx or 3xx responses|errors): *(\d+)', text))
print(f"P3a {name:10s}: {n / float(dur):,.0f} results/s stored, {int(cpu) / int(tck) / max(n,1) * 1e6:.1f} us CPU each (Vitals' process), non-2xx/errors {bad}")
open(f"/tmp/p3a-{name}.rate", "w").write(str(n / float(dur)))
PY
}
run sqlite ""
run postgres "store = \"${ADMIN%/*}/$DB\""
python3 -c "
s=float(open('/tmp/p3a-sqlite.rate').read()); p=float(open('/tmp/p3a-postgres.rate').read())
print(f'P3a postgres/sqlite: {p/s:.2f} (target >= 100,000 results/s on either, issue 18)')"
rm -f /tmp/p3a-sqlite.rate /tmp/p3a-postgres.rate
