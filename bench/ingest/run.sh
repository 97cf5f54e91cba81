#!/usr/bin/env bash
# P3 (push ingest, durable) and P4 (population alarm over 10,000 assets), Vitals against
# django-health-monitor 0.2.9 on the same machine in the same run. See
# ../shared/spec/performance.md and health-scoring.md.
#
#   anchor  django-health-monitor 0.2.9 + Django 2.2 LTS on SQLite, in a throw-away venv, driven
#           in-process by Django's test Client (no HTTP): form posts to /health_test/heart/<uid>/
#           and the /health_alarm/ query over 500 uids (dhm_bench.py, dhm_app/).
#   P3a     vitals POST /api/v1/results, batches of 500, wrk with several connections (batch.lua);
#           every result counted back from /api/v1/status (pipeline.observations_stored).
#   P3b     vitals POST /health_test/heart/<uid>/ form posts, wrk -c32 -t2 (form.lua); floor: the
#           same wrk against nginx keep-alive answering a constant body.
#   P4      vitals with 10,000 assets × 6 heart results (batch API), then 2,000 timed
#           GET /health_alarm/doctor/heart/?score=3&repetition=5&repetition_percent=60 (and with
#           aggregate_percent=20) over one keep-alive connection (vitals_client.py); answers checked
#           against the workload's expected uids and the anchor's.
#
# Usage: bench/ingest/run.sh
# Environment (all optional):
#   VITALS_BIN=path      vitals binary to use instead of `cargo build --release -p vitals`
#   KEEP_TMP=1           keep the temp dir (configs, logs, SQLite files, wrk and anchor output)
#   DURATION=10          seconds per wrk run
#   BATCH_CONNS=8        wrk connections for P3a (2 threads)
#   POSTS=3000 UIDS=500  anchor form posts and their uids
#   ANCHOR_SQLITE="wal"  anchor SQLite modes, any of: wal (same durability as Vitals: WAL,
#                        synchronous=NORMAL), default (Django's: rollback journal, fsync per
#                        commit; slow), memory (":memory:" as Django's test runner; published 333/s)
#   P4_ASSETS=10000 P4_RUNS=2000
#   NGINX_FLOOR=1        0 skips the nginx floor
#   STAGING_ROWS=16384   Vitals [server] staging_rows (SQLite's bulk-move size; 16384 is the default)
#   DHM_PYTHON=python3   interpreter of the anchor venv; DHM_DJANGO='Django>=2.2,<2.3'
#   CACHE_DIR=...        where the anchor venv is kept (default ~/.cache/vitals-bench)
set -euo pipefail
# No __pycache__ beside the scripts in the work tree.
export PYTHONDONTWRITEBYTECODE=1

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(git -C "$HERE" rev-parse --show-toplevel)
DURATION=${DURATION:-10}
BATCH_CONNS=${BATCH_CONNS:-8}
POSTS=${POSTS:-3000}
UIDS=${UIDS:-500}
ANCHOR_SQLITE=${ANCHOR_SQLITE:-wal}
P4_ASSETS=${P4_ASSETS:-10000}
P4_RUNS=${P4_RUNS:-2000}
NGINX_FLOOR=${NGINX_FLOOR:-1}
STAGING_ROWS=${STAGING_ROWS:-16384}
DHM_PYTHON=${DHM_PYTHON:-python3}
DHM_DJANGO=${DHM_DJANGO:-Django>=2.2,<2.3}
CACHE_DIR=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vitals-bench}

log() { printf '%s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

need_tools() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing missing packages: ${missing[*]}"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq >/dev/null || die "apt-get update failed; install ${missing[*]} by hand"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed; install them by hand"
}
need_tools wrk:wrk curl:curl python3:python3
[[ $NGINX_FLOOR == 1 ]] && need_tools nginx:nginx-light

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vitals-ingest-bench.XXXXXX")
chmod 755 "$TMP" # nginx workers may run as nobody
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
printf 'machine: %s cores, load average %s (other work on the same cores skews absolute figures)\n' \
    "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits (bounded) until $1 answers 200; $2 = pid that must stay alive.
wait_http() {
    local i
    for ((i = 0; i < 200; i++)); do
        kill -0 "$2" 2>/dev/null || return 1
        curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# Field $2 of wrk's "WRK k=v …" summary line in file $1.
wrk_field() { sed -n "s/^WRK .*\\b$2=\\([0-9]*\\).*/\\1/p" "$1"; }

# utime+stime of process $1 (all threads) in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

stored() { python3 "$HERE/vitals_client.py" status --url "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["observations_stored"])'; }

# 1. The Vitals binary.
VITALS_BIN=${VITALS_BIN:-${VITALS:-}}
if [[ -n "$VITALS_BIN" ]]; then
    BIN=$VITALS_BIN
else
    log "building target/release/vitals (cargo does nothing when it is up to date) ..."
    (cd "$ROOT" && cargo build --release -q -p vitals)
    BIN="$ROOT/target/release/vitals"
fi
[[ -x $BIN ]] || die "vitals binary $BIN not found"
# A private copy, so a rebuild by someone else during the run cannot swap it under us.
cp "$BIN" "$TMP/vitals"
BIN="$TMP/vitals"

# 2. The anchor's venv, created once and reused.
VENV="$CACHE_DIR/dhm-0.2.9-venv"
if ! "$VENV/bin/python" -c 'import django, health_monitor, jsonfield' 2>/dev/null; then
    log "creating the anchor venv in $VENV (django-health-monitor 0.2.9, $DHM_DJANGO) ..."
    rm -rf "$VENV"
    mkdir -p "$CACHE_DIR"
    "$DHM_PYTHON" -m venv "$VENV" || die "$DHM_PYTHON -m venv failed (Debian: apt-get install python3-venv)"
    # setuptools brings `distutils` back on Python >= 3.12; the package imports distutils.util.
    # jsonfield < 3 is the line that still supports Django 2.x.
    "$VENV/bin/pip" install -q "django-health-monitor==0.2.9" "$DHM_DJANGO" "jsonfield<3" setuptools ||
        die "pip install of the anchor failed"
fi
ANCHOR_VERSIONS=$("$VENV/bin/python" -c 'import django, sys; print("Django %s, Python %d.%d" % (django.get_version(), *sys.version_info[:2]))')

# 3. Anchor: form posts and alarm queries, in-process.
declare -A ANCHOR
for mode in $ANCHOR_SQLITE; do
    log "anchor: $POSTS posts over $UIDS uids, SQLite $mode ($ANCHOR_VERSIONS) ..."
    rm -rf "$TMP/dhm" && mkdir -p "$TMP/dhm" && cp -r "$HERE/dhm_app" "$TMP/dhm/app"
    (cd "$TMP/dhm" && "$VENV/bin/python" "$HERE/dhm_bench.py" --app "$TMP/dhm/app" \
        --db "$TMP/dhm/db.sqlite3" --sqlite "$mode" --posts "$POSTS" --uids "$UIDS" \
        --alarm-runs 50) >"$TMP/anchor-$mode.json" || die "anchor run ($mode) failed"
    ANCHOR[$mode]="$TMP/anchor-$mode.json"
done
first_mode=${ANCHOR_SQLITE%% *}
ANCHOR_JSON=${ANCHOR[$first_mode]}

# 4. Vitals for P3: fresh data dir, the heart score of the anchor's model.
start_vitals() { # $1 = name; sets URL, VPID, VDATA
    local dir="$TMP/$1" port
    port=$(free_port)
    mkdir -p "$dir"
    VDATA="$dir/data"
    cat >"$dir/vitals.toml" <<EOF
[server]
data_dir = "$VDATA"
self_check = false
staging_rows = $STAGING_ROWS

[ingest]
# batch.lua names 20,000 assets; the default cap on pushed assets is 10,000.
max_assets = 50000

[[score]]
test = "heart"
groups = ["doctor"]
field = "heartrate"
kind = "int"
rules = [{ above = 120, score = 4 }, { above = 100, score = 3 }, { above = 80, score = 2 }, { score = 1 }]
EOF
    "$BIN" serve --config "$dir/vitals.toml" --listen "127.0.0.1:$port" >"$dir/vitals.log" 2>&1 &
    VPID=$!
    PIDS+=("$VPID")
    URL="http://127.0.0.1:$port"
    wait_http "$URL/monitor" "$VPID" || die "vitals did not start (see $dir/vitals.log: $(tail -5 "$dir/vitals.log"))"
}
stop_vitals() {
    kill "$VPID" 2>/dev/null || true
    wait "$VPID" 2>/dev/null || true
}

start_vitals p3
log "P3a: wrk -t2 -c$BATCH_CONNS -d${DURATION}s, batches of 500 ..."
before=$(stored "$URL")
cpu0=$(cpu_ticks "$VPID")
wrk -t2 -c"$BATCH_CONNS" -d"${DURATION}s" -s "$HERE/batch.lua" "$URL" >"$TMP/p3a.txt" 2>&1 || die "wrk failed: $(cat "$TMP/p3a.txt")"
sleep 0.5 # requests wrk abandoned at the deadline finish on the server
after=$(stored "$URL")
p3a_cpu=$(($(cpu_ticks "$VPID") - cpu0))
p3a_req=$(wrk_field "$TMP/p3a.txt" requests)
p3a_us=$(wrk_field "$TMP/p3a.txt" duration_us)
p3a_bad=$(($(wrk_field "$TMP/p3a.txt" errors) + $(wrk_field "$TMP/p3a.txt" non2xx)))

log "P3b: wrk -t2 -c32 -d${DURATION}s, form posts ..."
before_b=$(stored "$URL")
cpu0=$(cpu_ticks "$VPID")
wrk -t2 -c32 -d"${DURATION}s" -s "$HERE/form.lua" "$URL" >"$TMP/p3b.txt" 2>&1 || die "wrk failed: $(cat "$TMP/p3b.txt")"
sleep 0.5
after_b=$(stored "$URL")
p3b_cpu=$(($(cpu_ticks "$VPID") - cpu0))
p3b_req=$(wrk_field "$TMP/p3b.txt" requests)
p3b_us=$(wrk_field "$TMP/p3b.txt" duration_us)
p3b_bad=$(($(wrk_field "$TMP/p3b.txt" errors) + $(wrk_field "$TMP/p3b.txt" non2xx)))
stop_vitals

# 5. Floor: the same form posts against nginx keep-alive answering a constant JSON body.
floor_rps=""
if [[ $NGINX_FLOOR == 1 ]]; then
    nport=$(free_port)
    mkdir -p "$TMP/nginx/logs"
    cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    server {
        listen 127.0.0.1:$nport;
        location / {
            default_type application/json;
            return 200 '{"score": 2, "message": "heart score changed to 2 for uid 1"}';
        }
    }
}
EOF
    nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>>"$TMP/nginx/logs/stderr.log" &
    NPID=$!
    PIDS+=("$NPID")
    if wait_http "http://127.0.0.1:$nport/" "$NPID"; then
        log "floor: the same wrk against nginx ..."
        wrk -t2 -c32 -d"${DURATION}s" -s "$HERE/form.lua" "http://127.0.0.1:$nport" >"$TMP/floor.txt" 2>&1 || true
        n_req=$(wrk_field "$TMP/floor.txt" requests)
        n_us=$(wrk_field "$TMP/floor.txt" duration_us)
        [[ -n $n_req && -n $n_us ]] && floor_rps=$(python3 -c "print($n_req / ($n_us / 1e6))")
    else
        log "nginx did not start; no floor figure ($(tail -3 "$TMP/nginx/logs/stderr.log" 2>/dev/null))"
    fi
    kill "$NPID" 2>/dev/null || true
    wait "$NPID" 2>/dev/null || true
fi

# 6. P4: fresh Vitals, P4_ASSETS uids × 6 heart results, then the alarm queries.
start_vitals p4
log "P4: loading $P4_ASSETS assets × 6 results ..."
python3 "$HERE/vitals_client.py" load --url "$URL" --uids "$P4_ASSETS" >"$TMP/p4-load.json" || die "P4 load failed"
log "P4: $P4_RUNS alarm queries per variant ..."
python3 "$HERE/vitals_client.py" alarm --url "$URL" --uids "$P4_ASSETS" --runs "$P4_RUNS" \
    --data-dir "$VDATA" --pid "$VPID" >"$TMP/p4.json" || die "P4 alarm run failed"
stop_vitals

# 7. One line per figure.
export TMP POSTS UIDS DURATION BATCH_CONNS P4_ASSETS ANCHOR_VERSIONS ANCHOR_SQLITE
export p3a_req p3a_us p3a_bad before after p3b_req p3b_us p3b_bad before_b after_b floor_rps
export p3a_cpu p3b_cpu CLK_TCK
python3 - "$ANCHOR_JSON" <<'EOF'
import json, os, sys

e = os.environ
anchor = json.load(open(sys.argv[1]))
print("anchor: django-health-monitor 0.2.9 (%s), SQLite, in-process test client, no HTTP" % e["ANCHOR_VERSIONS"])
for mode in e["ANCHOR_SQLITE"].split():
    a = json.load(open(os.path.join(e["TMP"], "anchor-%s.json" % mode)))
    label = {"wal": "WAL+synchronous=NORMAL, same durability as Vitals",
             "default": "Django defaults: rollback journal, fsync per commit",
             "memory": ":memory:, as Django's test runner (published 333/s)"}[mode]
    print("P3  anchor form posts [%s]: %d posts in %.2f s = %.0f posts/s (published figure: 333/s)"
          % (label, a["posts"], a["post_seconds"], a["posts_per_s"]))
anchor_rate = anchor["posts_per_s"]

req, us, bad = int(e["p3a_req"]), int(e["p3a_us"]), int(e["p3a_bad"])
stored = int(e["after"]) - int(e["before"])
rate = req * 500 / (us / 1e6)
conns = int(e["BATCH_CONNS"])
complete = req * 500 <= stored <= (req + conns) * 500 and bad == 0
print("P3a vitals POST /api/v1/results, batches of 500, wrk -c%d, %s s: %.0f batches/s = %s results/s;"
      " target >= 100,000: %s (%.2fx target); %.0fx the anchor's posts/s; %d answered 2xx, %d results"
      " counted in pipeline.observations_stored: %s"
      % (conns, e["DURATION"], req / (us / 1e6), "{:,.0f}".format(rate), "MET" if rate >= 100000 else "MISSED",
         rate / 100000, rate / anchor_rate, req, stored,
         "all committed" if complete else "MISMATCH (errors %d)" % bad))
cpu_s = int(e["p3a_cpu"]) / int(e["CLK_TCK"])
print("P3a   vitals CPU: %.2f cores busy, %.1f us of CPU per result stored (%.0f results per CPU-s)"
      % (cpu_s / (us / 1e6), cpu_s * 1e6 / max(stored, 1), max(stored, 1) / max(cpu_s, 1e-9)))

req, us, bad = int(e["p3b_req"]), int(e["p3b_us"]), int(e["p3b_bad"])
stored = int(e["after_b"]) - int(e["before_b"])
rate = req / (us / 1e6)
floor = e.get("floor_rps") or ""
floor_txt = ("; floor (same wrk vs nginx keep-alive, constant body): %.0f req/s, Vitals = %.0f%% of it"
             % (float(floor), 100 * rate / float(floor))) if floor else "; floor not measured"
complete = req <= stored <= req + 32 and bad == 0
print("P3b vitals POST /health_test/heart/<uid>/ form, wrk -c32 -t2, %s s: %s posts/s; target >= 20,000:"
      " %s (%.2fx target); %.0fx the anchor's %.0f posts/s%s; stored: %s"
      % (e["DURATION"], "{:,.0f}".format(rate), "MET" if rate >= 20000 else "MISSED", rate / 20000, rate / anchor_rate,
         anchor_rate, floor_txt, "all committed" if complete else "MISMATCH (stored %d, errors %d)" % (stored, bad)))
cpu_s = int(e["p3b_cpu"]) / int(e["CLK_TCK"])
print("P3b   vitals CPU: %.2f cores busy, %.1f us of CPU per post (%.0f posts per CPU-s)"
      % (cpu_s / (us / 1e6), cpu_s * 1e6 / max(stored, 1), max(stored, 1) / max(cpu_s, 1e-9)))

p4 = json.load(open(os.path.join(e["TMP"], "p4.json")))
for key, label in (("a0", "aggregate_percent=0"), ("a20", "aggregate_percent=20")):
    a, v = anchor["alarms"][key], p4[key]
    agree = sorted(a["uids"]) == sorted(v["uids_upto_500"]) if int(e["UIDS"]) == 500 else None
    first_note = " (rebuilds its history cache: writes during the GET)" if key == "a0" else ""
    print("P4  anchor alarm (score=3, repetition=5, repetition_percent=60, %s) over %d uids: first query"
          " %.0f ms%s, then p50 %.1f ms, p99 %.1f ms over %d"
          % (label, anchor["uids"], a["first_ms"], first_note, a["p50_ms"], a["p99_ms"], a["runs"]))
    print("P4  vitals alarm (same query) over %s assets, %d failing: p50 %.2f ms, p99 %.2f ms, max %.1f ms"
          " over %d keep-alive requests (client time, Python overhead included); target p99 < 5 ms: %s"
          " (%.2fx target); anchor p50 / vitals p50 = %.1fx with %.0fx the assets, per asset %.1fx"
          " (%.2f vs %.2f us); answer = expected%s"
          % (e["P4_ASSETS"], v["failing"], v["p50_ms"], v["p99_ms"], v["max_ms"], v["runs"],
             "MET" if v["p99_ms"] < 5 else "MISSED", v["p99_ms"] / 5, a["p50_ms"] / v["p50_ms"],
             int(e["P4_ASSETS"]) / anchor["uids"],
             (a["p50_ms"] / anchor["uids"]) / (v["p50_ms"] / int(e["P4_ASSETS"])),
             a["p50_ms"] * 1e3 / anchor["uids"], v["p50_ms"] * 1e3 / int(e["P4_ASSETS"]),
             "" if agree is None else ", = anchor's on uids 1..500: %s" % ("yes" if agree else "NO")))
    print("P4    vitals server CPU per query: %.3f ms (target <= 0.5 ms: %s; latency above it = waiting for a core)"
          % (v["server_cpu_ms"], "MET" if v["server_cpu_ms"] <= 0.5 else "MISSED"))
f = p4["fresh"]
print("P4  vitals alarm, a different query every time (no answer reused, aggregate_percent -1..-1000):"
      " p50 %.2f ms, p99 %.2f ms, max %.1f ms over %d; server CPU per query %.3f ms"
      % (f["p50_ms"], f["p99_ms"], f["max_ms"], f["runs"], f["server_cpu_ms"]))
print("P4  vitals data files unchanged by the %d alarm GETs (no writes): %s"
      % (2 * p4["a0"]["runs"] + f["runs"], "yes" if p4.get("data_files_unchanged") else "NO"))
EOF
