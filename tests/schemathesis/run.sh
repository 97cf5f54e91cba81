#!/usr/bin/env bash
# Contract check of the HTTP API against its OpenAPI document with schemathesis.
#
# Starts `vitals serve` on a free loopback port with a small configuration (checks, a [[score]]
# rule, a webhook notifier pointing at an unused loopback port, a [[rule]]), seeds a little data,
# then runs schemathesis from crates/vitals-server/src/openapi.json with the checks
# not_a_server_error, status_code_conformance and response_schema_conformance. Stops the
# server and exits with schemathesis' status.
#
#   tests/schemathesis/run.sh                 # 30 examples per operation, fixed seed
#   ST_MAX_EXAMPLES=100 ST_SEED=7 tests/schemathesis/run.sh
#   VITALS_BIN=target/release/vitals tests/schemathesis/run.sh
#
# Needs python3 with venv; schemathesis is installed in a virtualenv (ST_VENV, default
# target/schemathesis-venv) on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"

spec="$root/crates/vitals-server/src/openapi.json"
venv="${ST_VENV:-$root/target/schemathesis-venv}"
max_examples="${ST_MAX_EXAMPLES:-30}"
seed="${ST_SEED:-20261121}"
# schemathesis 4.x; its `st run` options differ from 3.x.
st_version="4.32.5"
bin="${VITALS_BIN:-$root/target/debug/vitals}"

if [ ! -x "$bin" ]; then
    echo "schemathesis: building $bin"
    cargo build -p vitals
fi
if [ ! -x "$venv/bin/st" ] || ! "$venv/bin/st" --version 2>/dev/null | grep -q "$st_version"; then
    echo "schemathesis: installing schemathesis $st_version into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==$st_version"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/vitals-schemathesis.XXXXXX")"
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
port="$(free_port)"
# Nothing listens here: webhook deliveries and the tcp check fail, so there are alerts,
# retries and failed notifications to look at.
dead_port="$(free_port)"
base="http://127.0.0.1:$port"

cat >"$work/vitals.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
data_dir = "$work/data"
self_check = true

[[asset]]
id = "node-17"
name = "Node 17"
groups = ["doctor"]

[[asset]]
id = "minlog2"
name = "MinLog2"
groups = ["platform"]

[[check]]
asset = "minlog2"
name = "db"
type = "tcp"
address = "127.0.0.1:$dead_port"
interval = "2s"
timeout = "1s"

[[check]]
asset = "node-17"
name = "nightly"
type = "heartbeat"
interval = "1h"
slug = "clinic-17-export"

[[score]]
test = "heart"
groups = ["doctor"]
field = "heartrate"
kind = "int"
rules = [{ above = 120, score = 4 }, { above = 100, score = 3 }, { above = 80, score = 2 }, { score = 1 }]

[[notifier]]
id = "hook"
type = "webhook"
url = "http://127.0.0.1:$dead_port/hook"

[[rule]]
id = "down"
checks = ["*"]
count = 1
notifiers = ["hook"]
TOML

"$bin" config check "$work/vitals.toml"
"$bin" serve --config "$work/vitals.toml" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pid=$!
up=""
for _ in $(seq 1 100); do
    if curl -fsS -m 2 "$base/monitor" >/dev/null 2>&1; then up=1; break; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.2
done
if [ -z "$up" ]; then
    echo "schemathesis: vitals serve did not answer /monitor; its log:" >&2
    cat "$work/serve.log" >&2
    exit 2
fi

# A little data, so that the examples in the document find something: pushed results,
# compatible-API results for uid 1, a heartbeat, a silence; the tcp check brings an alert.
post() { curl -fsS -m 10 -o /dev/null -X POST "$@"; }
post "$base/api/v1/results" -H 'Content-Type: application/json' -d '{"results": [
  {"asset": "node-17", "check": "import", "status": "ok", "values": {"imported": 583}, "id": "n17-1"},
  {"asset": "node-17", "check": "heart", "values": {"heartrate": 101}}]}'
post "$base/health_test/heart/1/" -d heartrate=90
post "$base/health_test/heart/2/" -d heartrate=130
post "$base/ping/clinic-17-export"
post "$base/api/v1/silences" -H 'Content-Type: application/json' \
    -d '{"matchers": {"assets": ["node-17"]}, "duration": "2h", "author": "ci", "comment": "contract test"}'
for _ in $(seq 1 50); do
    if curl -fsS -m 2 "$base/api/v1/alerts/1" >/dev/null 2>&1; then break; fi
    sleep 0.2
done

# The document's own route may not be wired in this build yet: test it only when it is.
exclude=()
if ! curl -fsS -m 5 -o /dev/null "$base/api/v1/openapi.json"; then
    echo "schemathesis: GET /api/v1/openapi.json is not served by this build; leaving it out"
    exclude=(--exclude-path /api/v1/openapi.json)
fi

# One worker: with two, hypothesis (inside schemathesis) calls ast.parse from two threads and
# CPython 3.11 fails with "AST constructor recursion depth mismatch". The coverage phase adds
# boundary values (huge integers, empty strings) to the random examples.
set +e
"$venv/bin/st" run "$spec" \
    --url "$base" \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance \
    --max-examples "$max_examples" \
    --seed "$seed" \
    --workers 1 \
    --request-timeout 10 \
    --suppress-health-check all \
    --report junit --report-dir "$root/target/schemathesis-report" \
    "${exclude[@]}"
status=$?
set -e
if ! kill -0 "$pid" 2>/dev/null; then
    echo "schemathesis: vitals serve is gone; its log:" >&2
    tail -n 50 "$work/serve.log" >&2
    status=1
fi
exit "$status"
