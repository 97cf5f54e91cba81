#!/usr/bin/env bash
# Issue 11's figures on a release build: what unauthenticated floods leave in the database (and
# the audit table), and whether /monitor, pushes and the overview answer while thousands of
# half-sent connections are held. The anchor is the build before the fix, as the issue
# measured it (600 unauthenticated 60 KB requests: +40 MB).
#
# Usage: bench/trust/run.sh      Environment: VITALS_BIN, N=10000, HOLD=2000, KEEP_TMP=1
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(git -C "$HERE" rev-parse --show-toplevel)
N=${N:-10000}
HOLD=${HOLD:-2000}
if [ -z "${VITALS_BIN:-}" ]; then
    cargo build --release -p vitals --manifest-path "$ROOT/Cargo.toml" >&2
    VITALS_BIN="$ROOT/target/release/vitals"
fi
TMP=$(mktemp -d)
cleanup() {
    [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    [ "${KEEP_TMP:-0}" = 1 ] && echo "kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TOKEN=bench-admin-secret-0123456789
cat >"$TMP/vitals.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
data_dir = "$TMP/data"
self_check = false

[[asset]]
id = "bench"

[[check]]
asset = "bench"
name = "push"
type = "push"

[[token]]
name = "ops"
role = "admin"
secret = "$TOKEN"
TOML
# Room for the held connections.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
"$VITALS_BIN" serve --config "$TMP/vitals.toml" >"$TMP/vitals.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/monitor" >/dev/null 2>&1 && break
    sleep 0.1
done
echo "vitals $("$VITALS_BIN" --version 2>/dev/null | head -1), commit $(git -C "$ROOT" rev-parse --short HEAD)"
python3 "$HERE/trust.py" "http://127.0.0.1:$PORT" "$TMP/data" "$TOKEN" "$N" "$HOLD"
echo "vitals RSS after: $(ps -o rss= -p "$PID") KB"
