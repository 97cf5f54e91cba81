#!/usr/bin/env bash
# P1 — HTTP probe efficiency: probes completed per CPU-second of the Vitals process, against
# the same figure for prometheus-blackbox-exporter driven by wrk, and the floor of a plain
# `wrk -H 'Connection: close'` client. All three hit the same private nginx on loopback, one
# after the other (never at the same time). See bench/README.md and
# ../shared/spec/performance.md (P1).
#
# Usage: bench/probe-vs-blackbox/run.sh
# Environment (all optional):
#   CHECKS=10000        Vitals http checks, each every INTERVAL
#   INTERVAL=1s         so CHECKS/INTERVAL probes per second are asked of Vitals
#   TIMEOUT=1s          each check's timeout (may not exceed the interval)
#   WARMUP=15           seconds after Vitals answers before the window opens (first runs are
#                       spread over the first 5 s)
#   WINDOW=20           measurement window, seconds (Vitals and blackbox alike)
#   FLOOR_WINDOW=10     wrk floor duration, seconds
#   NGINX_WORKERS=1     nginx worker processes
#   MAX_CONCURRENCY=512 Vitals [server] max_concurrency
#   VITALS_BIN=…        binary to test (default target/release/vitals, built when missing)
#   KEEP_TMP=1          keep the temp dir (configs, logs, SQLite file)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

CHECKS=${CHECKS:-10000}
INTERVAL=${INTERVAL:-1s}
TIMEOUT=${TIMEOUT:-1s}
WARMUP=${WARMUP:-15}
WINDOW=${WINDOW:-20}
FLOOR_WINDOW=${FLOOR_WINDOW:-10}
NGINX_WORKERS=${NGINX_WORKERS:-1}
TARGET_PER_CPU=10000
TARGET_RATIO=5

need_tools nginx:nginx-light wrk:wrk prometheus-blackbox-exporter:prometheus-blackbox-exporter \
    curl:curl jq:jq ss:iproute2
find_vitals "$ROOT"
bench_tmpdir
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

NGINX_PORT=$(free_port 18080)
start_nginx "$NGINX_PORT" "$NGINX_WORKERS"
TARGET="http://127.0.0.1:$NGINX_PORT/"

echo "P1 setup: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), nginx $NGINX_WORKERS worker(s) on $TARGET"

# ---------------------------------------------------------------------------------------------
# Vitals: CHECKS http checks every INTERVAL; CPU of the process over WINDOW seconds.
# ---------------------------------------------------------------------------------------------
VITALS_PORT=$(free_port 18090)
write_vitals_config "$BENCH_TMP/vitals.toml" "$CHECKS" "$INTERVAL" "$TARGET" "$BENCH_TMP/vitals-data" "$TIMEOUT"
start_vitals "$BENCH_TMP/vitals.toml" "$VITALS_PORT" "$BENCH_TMP/vitals.log"
VERSION=$(curl -fsS "http://127.0.0.1:$VITALS_PORT/version" | jq -r '"\(.version) (\(.git_commit), \(.build_profile))"')
echo "P1 vitals $VERSION: $CHECKS http checks every $INTERVAL, warm-up ${WARMUP}s, window ${WINDOW}s"
pause "$WARMUP"

# /metrics renders a gauge per check, so it is scraped outside the CPU window; the window itself
# reads only /api/v1/status, which is cheap.
read -r ok0 warn0 crit0 unk0 < <(vitals_http_outcomes "$VITALS_PORT")
read -r acc0 req0 < <(nginx_counts "$NGINX_PORT")
ng0=$(cpu_ticks_tree "$NGINX_PID")
t0=$(now_s)
c0=$(cpu_ticks "$VITALS_PID")
s0=$(vitals_status "$VITALS_PORT")
pause "$WINDOW"
s1=$(vitals_status "$VITALS_PORT")
c1=$(cpu_ticks "$VITALS_PID")
t1=$(now_s)
ng1=$(cpu_ticks_tree "$NGINX_PID")
read -r acc1 req1 < <(nginx_counts "$NGINX_PORT")
read -r ok1 warn1 crit1 unk1 < <(vitals_http_outcomes "$VITALS_PORT")

p0=$(jq .scheduler.probes_total <<<"$s0")
p1=$(jq .scheduler.probes_total <<<"$s1")
sk0=$(jq .scheduler.skipped_ticks <<<"$s0")
sk1=$(jq .scheduler.skipped_ticks <<<"$s1")
late_p99=$(jq .scheduler.lateness.p99_ms <<<"$s1")
errs=$(jq .pipeline.store_errors <<<"$s1")
stored=$(jq .pipeline.observations_stored <<<"$s1")
dt=$(calc "$t1 - $t0")
dprobes=$((p1 - p0))
vcpu=$(calc "($c1 - $c0) / $CLK_TCK")
v_per_cpu=$(calc "$dprobes / ($vcpu > 0 ? $vcpu : 1e-9)")
v_wall=$(calc "$dprobes / $dt")
v_cores=$(calc "$vcpu / $dt")
ng_cores_v=$(calc "($ng1 - $ng0) / $CLK_TCK / $dt")
stop_pid "$VITALS_PID"

# ---------------------------------------------------------------------------------------------
# Anchor: blackbox exporter driven by wrk; its CPU over the wrk run.
# ---------------------------------------------------------------------------------------------
BB_PORT=$(free_port 19115)
cat >"$BENCH_TMP/blackbox.yml" <<EOF
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
EOF
prometheus-blackbox-exporter --config.file="$BENCH_TMP/blackbox.yml" \
    --web.listen-address="127.0.0.1:$BB_PORT" --log.level=warn >"$BENCH_TMP/blackbox.log" 2>&1 &
BB_PID=$!
BENCH_PIDS+=("$BB_PID")
PROBE_URL="http://127.0.0.1:$BB_PORT/probe?target=$TARGET&module=http_2xx"
wait_http "http://127.0.0.1:$BB_PORT/metrics" 30 "$BB_PID" || die "blackbox exporter did not start (see $BENCH_TMP/blackbox.log)"
BB_VERSION=$(prometheus-blackbox-exporter --version 2>&1 | awk 'NR == 1 {print $3}')

# One probe shown once: its phases prove it connects (fresh connection) and succeeds.
echo "P1 blackbox $BB_VERSION: one probe's own figures:"
curl -fsS "$PROBE_URL" | grep -E '^probe_(success|http_status_code|http_duration_seconds\{phase="(connect|processing)"\})' |
    sed 's/^/    /'

# wrk counts the probes whose answer does not say probe_success 1 (the response callback costs
# wrk's CPU only, which is not the figure measured).
cat >"$BENCH_TMP/probe_ok.lua" <<'EOF'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0 end
function response(status, headers, body)
  if status == 200 and body:find("\nprobe_success 1", 1, true) then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local o, b = 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); b = b + t:get("bad") end
  io.write(string.format("PROBES_OK %d\nPROBES_BAD %d\n", o, b))
end
EOF
wrk -t2 -c32 -d3s "$PROBE_URL" >/dev/null 2>&1 || true # warm the Go runtime
read -r bacc0 breq0 < <(nginx_counts "$NGINX_PORT")
bng0=$(cpu_ticks_tree "$NGINX_PID")
bt0=$(now_s)
b0=$(cpu_ticks "$BB_PID")
wrk -t2 -c32 -d"${WINDOW}s" -s "$BENCH_TMP/probe_ok.lua" "$PROBE_URL" >"$BENCH_TMP/wrk-blackbox.txt" 2>&1 ||
    die "wrk against blackbox failed: $(cat "$BENCH_TMP/wrk-blackbox.txt")"
b1=$(cpu_ticks "$BB_PID")
bt1=$(now_s)
bng1=$(cpu_ticks_tree "$NGINX_PID")
read -r bacc1 breq1 < <(nginx_counts "$NGINX_PORT")
stop_pid "$BB_PID"

bprobes=$(awk '/requests in/ {print $1}' "$BENCH_TMP/wrk-blackbox.txt")
bok=$(awk '/^PROBES_OK/ {print $2}' "$BENCH_TMP/wrk-blackbox.txt")
bbad=$(awk '/^PROBES_BAD/ {print $2}' "$BENCH_TMP/wrk-blackbox.txt")
bdt=$(calc "$bt1 - $bt0")
bcpu=$(calc "($b1 - $b0) / $CLK_TCK")
b_per_cpu=$(calc "$bprobes / ($bcpu > 0 ? $bcpu : 1e-9)")
b_wall=$(calc "$bprobes / $bdt")
b_cores=$(calc "$bcpu / $bdt")
ng_cores_b=$(calc "($bng1 - $bng0) / $CLK_TCK / $bdt")

# ---------------------------------------------------------------------------------------------
# Floor: a C client opening a fresh connection per request; CPU of wrk itself.
# ---------------------------------------------------------------------------------------------
TIMEFORMAT='%3U %3S'
{ time wrk -H 'Connection: close' -t1 -c32 -d"${FLOOR_WINDOW}s" "$TARGET" >"$BENCH_TMP/wrk-floor.txt" 2>&1; } 2>"$BENCH_TMP/wrk-floor.time" ||
    die "wrk floor run failed: $(cat "$BENCH_TMP/wrk-floor.txt")"
read -r fu fs <"$BENCH_TMP/wrk-floor.time"
freq=$(awk '/requests in/ {print $1}' "$BENCH_TMP/wrk-floor.txt")
ferr=$(awk '/Socket errors/ {print}' "$BENCH_TMP/wrk-floor.txt")
fcpu=$(calc "$fu + $fs")
f_per_cpu=$(calc "$freq / ($fcpu > 0 ? $fcpu : 1e-9)")

# ---------------------------------------------------------------------------------------------
ratio=$(calc "$v_per_cpu / ($b_per_cpu > 0 ? $b_per_cpu : 1e-9)")
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b ? "met" : "MISSED") }'; }

echo
printf 'P1 vitals     : %s probes/CPU-s (%s probes/s wall, %.2f cores)  target >= %s: %s\n' \
    "$(commas "$v_per_cpu")" "$(commas "$v_wall")" "$v_cores" "$(commas $TARGET_PER_CPU)" "$(verdict "$v_per_cpu" $TARGET_PER_CPU)"
printf 'P1 vitals outcomes: %s ok, %s warn, %s crit, %s unknown (window plus its /metrics scrapes); %s skipped ticks; lateness p99 %s ms; %s stored, %s store errors\n' \
    "$(commas $((ok1 - ok0)))" "$(commas $((warn1 - warn0)))" "$(commas $((crit1 - crit0)))" "$(commas $((unk1 - unk0)))" \
    "$(commas $((sk1 - sk0)))" "$late_p99" "$(commas "$stored")" "$errs"
printf 'P1 vitals conns : nginx accepted %s connections for %s requests (%.2f cores of nginx)\n' \
    "$(commas $((acc1 - acc0)))" "$(commas $((req1 - req0)))" "$ng_cores_v"
printf 'P1 blackbox   : %s probes/CPU-s (%s probes/s wall, %.2f cores)  anchor in performance.md: 2,050\n' \
    "$(commas "$b_per_cpu")" "$(commas "$b_wall")" "$b_cores"
printf 'P1 blackbox outcomes: %s probe_success 1, %s other\n' "$(commas "$bok")" "$(commas "$bbad")"
printf 'P1 blackbox conns : nginx accepted %s connections for %s requests (%.2f cores of nginx)\n' \
    "$(commas $((bacc1 - bacc0)))" "$(commas $((breq1 - breq0)))" "$ng_cores_b"
printf 'P1 ratio      : %.1fx (target >= %sx): %s\n' "$ratio" "$TARGET_RATIO" "$(verdict "$ratio" $TARGET_RATIO)"
printf "P1 floor (wrk Connection: close): %s req/CPU-s (%s requests in %ss, %.2f CPU-s)%s  anchor in performance.md: 21,000\n" \
    "$(commas "$f_per_cpu")" "$(commas "$freq")" "$FLOOR_WINDOW" "$fcpu" "${ferr:+; $ferr}"
printf 'P1 vitals vs floor: %.0f%% of the floor\n' "$(calc "100 * $v_per_cpu / ($f_per_cpu > 0 ? $f_per_cpu : 1e-9)")"
