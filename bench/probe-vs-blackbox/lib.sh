# Shared helpers for the Vitals benchmarks (sourced by bench/probe-vs-blackbox/run.sh and
# bench/scale/run.sh; not meant to be run on its own).
#
# Everything a benchmark starts is recorded in BENCH_PIDS and stopped by bench_cleanup (the
# scripts install it as an EXIT trap), so an interrupted run leaves no nginx, vitals, blackbox
# exporter or wrk behind. Processes are stopped by their own pid only.

BENCH_PIDS=()
BENCH_TMP=""
CLK_TCK=$(getconf CLK_TCK)

log() { printf '%s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Installs the Debian packages that provide the given commands when any is missing.
# Usage: need_tools cmd:package ...
need_tools() {
    local missing=() pair cmd pkg
    for pair in "$@"; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]] || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing missing packages: ${missing[*]}"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq >/dev/null || die "apt-get update failed; install ${missing[*]} by hand"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed; install them by hand"
}

bench_tmpdir() {
    BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/vitals-bench.XXXXXX") || die "cannot create a temp dir"
    chmod 755 "$BENCH_TMP" # nginx workers may run as nobody
}

# Stops every process we started (TERM, then KILL after a grace period) and removes the temp
# dir unless KEEP_TMP=1.
bench_cleanup() {
    local pid i
    for pid in "${BENCH_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        for ((i = 0; i < 150; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    BENCH_PIDS=()
    if [[ -n $BENCH_TMP && -d $BENCH_TMP ]]; then
        if [[ ${KEEP_TMP:-0} == 1 ]]; then
            log "kept $BENCH_TMP"
        else
            rm -rf "$BENCH_TMP"
        fi
    fi
}

# Stops one process we started and forgets it.
stop_pid() {
    local pid=$1 i keep=()
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for i in "${BENCH_PIDS[@]}"; do
        [[ $i == "$pid" ]] || keep+=("$i")
    done
    BENCH_PIDS=("${keep[@]}")
}

# First TCP port >= $1 on 127.0.0.1 that nobody listens on.
free_port() {
    local p=$1 used
    used=$(ss -Hltn 2>/dev/null | awk '{print $4}')
    while grep -qE "[:.]$p\$" <<<"$used"; do
        p=$((p + 1))
    done
    echo "$p"
}

# utime+stime of a process (all its threads), in clock ticks.
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || die "process $1 is gone"
    # The command name may contain spaces: fields are counted after the last ')'.
    stat=${stat##*) }
    awk '{print $12 + $13}' <<<"$stat"
}

# utime+stime of a process and all its direct children (nginx master + workers), in ticks.
cpu_ticks_tree() {
    local total pid
    total=$(cpu_ticks "$1")
    for pid in $(cat "/proc/$1/task/"*/children 2>/dev/null); do
        total=$((total + $(cpu_ticks "$pid")))
    done
    echo "$total"
}

now_s() { date +%s.%N; }

# Sleeps in the background and waits, so a TERM/INT trap runs at once instead of after the sleep.
pause() {
    sleep "$1" &
    wait $! || true
}

# Float arithmetic: calc 'expr'.
calc() { awk "BEGIN { printf \"%.6f\", ($1) }"; }

# Integer with thousands separators: 12345.6 -> 12,346.
commas() {
    awk -v n="$1" 'BEGIN {
        s = sprintf("%.0f", n); neg = ""
        if (substr(s, 1, 1) == "-") { neg = "-"; s = substr(s, 2) }
        out = ""
        while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
        print neg s out
    }'
}

# Waits until a URL answers 2xx (bounded: $2 seconds, default 30); gives up early when the
# process $3 (optional) has exited.
wait_http() {
    local url=$1 limit=${2:-30} pid=${3:-} i
    for ((i = 0; i < limit * 10; i++)); do
        curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
        [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Starts a private nginx on 127.0.0.1:$1 with $2 worker processes; sets NGINX_PID.
# `location /` answers a small 200 body; /nginx_status (stub_status) counts connections and
# requests, which shows whether a client opened a fresh connection per request.
start_nginx() {
    local port=$1 workers=$2 dir="$BENCH_TMP/nginx"
    mkdir -p "$dir/logs"
    cat >"$dir/nginx.conf" <<EOF
worker_processes $workers;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events {
    worker_connections 16384;
}
http {
    access_log off;
    keepalive_requests 100000;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$port backlog=4096;
        location = /nginx_status {
            stub_status;
        }
        location / {
            default_type text/plain;
            return 200 "ok\n";
        }
    }
}
EOF
    nginx -p "$dir" -c "$dir/nginx.conf" -t >/dev/null 2>&1 || {
        nginx -p "$dir" -c "$dir/nginx.conf" -t
        die "nginx rejected its configuration"
    }
    nginx -p "$dir" -c "$dir/nginx.conf" 2>>"$dir/logs/stderr.log" &
    NGINX_PID=$!
    BENCH_PIDS+=("$NGINX_PID")
    wait_http "http://127.0.0.1:$port/" 10 "$NGINX_PID" || die "nginx did not start on 127.0.0.1:$port (see $dir/logs)"
}

# "accepts requests" from nginx stub_status.
nginx_counts() {
    curl -fsS --max-time 2 "http://127.0.0.1:$1/nginx_status" | awk 'NR == 3 {print $1, $3}'
}

# Writes a Vitals config with $2 http checks every $3 (timeout $6) against $4 into $1.
write_vitals_config() {
    local file=$1 n=$2 interval=$3 url=$4 data=$5 timeout=$6 i
    {
        printf '[server]\ndata_dir = "%s"\nmax_concurrency = %s\nself_check = false\n' \
            "$data" "${MAX_CONCURRENCY:-512}"
        # STORE=postgres://… runs the same benchmark on PostgreSQL (bench/postgres/p2.sh).
        if [[ -n ${STORE:-} ]]; then printf 'store = "%s"\n' "$STORE"; fi
        # STAGING_ROWS=65536 sets [server] staging_rows (SQLite's bulk-move size).
        if [[ -n ${STAGING_ROWS:-} ]]; then printf 'staging_rows = %s\n' "$STAGING_ROWS"; fi
        for ((i = 1; i <= n; i++)); do
            printf '\n[[check]]\nasset = "n%05d"\nname = "http"\ntype = "http"\nurl = "%s"\ninterval = "%s"\ntimeout = "%s"\n' \
                "$i" "$url" "$interval" "$timeout"
        done
    } >"$file"
}

# Starts `vitals serve` on 127.0.0.1:$2 with config $1; sets VITALS_PID. Logs go to a file:
# a benchmark should not pay for a terminal.
start_vitals() {
    local config=$1 port=$2 log=$3
    "$VITALS_BIN" serve --config "$config" --listen "127.0.0.1:$port" >"$log" 2>&1 &
    VITALS_PID=$!
    BENCH_PIDS+=("$VITALS_PID")
    wait_http "http://127.0.0.1:$port/api/v1/status" 60 "$VITALS_PID" || {
        tail -5 "$log" >&2
        die "vitals did not start on 127.0.0.1:$port"
    }
}

vitals_status() { curl -fsS --max-time 5 "http://127.0.0.1:$1/api/v1/status"; }

# "ok warn crit unknown" counts of http probes from /metrics.
vitals_http_outcomes() {
    curl -fsS --max-time 30 "http://127.0.0.1:$1/metrics" | awk '
        /^vitals_probes_total\{type="http"/ {
            match($0, /status="[a-z]+"/); s = substr($0, RSTART + 8, RLENGTH - 9); c[s] = $NF
        }
        END { printf "%d %d %d %d\n", c["ok"], c["warn"], c["crit"], c["unknown"] }'
}

# Finds or builds the release binary (VITALS_BIN overrides).
find_vitals() {
    local root=$1
    VITALS_BIN=${VITALS_BIN:-$root/target/release/vitals}
    if [[ ! -x $VITALS_BIN ]]; then
        log "building $VITALS_BIN (cargo build --release -p vitals; takes minutes)"
        (cd "$root" && cargo build --release -p vitals) || die "release build failed"
    fi
    [[ -x $VITALS_BIN ]] || die "no vitals binary at $VITALS_BIN"
}
