#!/usr/bin/env bash
# Probes per CPU-second of the Vitals process, per check type, beside the http probe's figure.
#
# For each type, `vitals serve` runs CHECKS checks of that type every second for WINDOW seconds
# against a loopback target; probes are counted from vitals_probes_total in /metrics, CPU is the
# utime+stime of the Vitals process (all threads) from /proc. Targets (loopback only):
#   http, prometheus  Debian's prometheus-node-exporter (the same URL: http fetches it, prometheus
#                     fetches and parses it and judges 2 conditions)
#   icmp              127.0.0.1, one echo request per probe
#   postgres          127.0.0.1:5432, SELECT 1 on a fresh connection per probe
#   mysql             127.0.0.1:3306, SELECT 1 on a fresh connection per probe
#   log               one file, appended to by a bounded writer loop (an ERROR line every 100 ms,
#                     so every run finds some: its checks are warn, ok% 0); each check follows it
# The targets' own CPU is not counted (they are other processes). Ratios are to http.
#
#   bench/checks/run.sh                 # ~3 min
#   CHECKS=500 WINDOW=30 TYPES="http icmp" bench/checks/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../probe-vs-blackbox/lib.sh
source "$root/bench/probe-vs-blackbox/lib.sh"
trap bench_cleanup EXIT

CHECKS=${CHECKS:-200}
WINDOW=${WINDOW:-20}
TYPES=${TYPES:-"http prometheus icmp postgres mysql log"}
need_tools curl:curl prometheus-node-exporter:prometheus-node-exporter ss:iproute2
find_vitals "$root"
bench_tmpdir

log "load average: $(cut -d' ' -f1-3 /proc/loadavg); $CHECKS checks per type, every 1 s, ${WINDOW}s window"

ne_port=$(free_port 19100)
prometheus-node-exporter --web.listen-address="127.0.0.1:$ne_port" \
    --collector.disable-defaults --collector.loadavg --collector.meminfo --collector.cpu \
    >"$BENCH_TMP/node-exporter.log" 2>&1 &
BENCH_PIDS+=("$!")
wait_http "http://127.0.0.1:$ne_port/metrics" 30 || die "node exporter did not start"

logfile="$BENCH_TMP/app.log"
: >"$logfile"

check_body() {
    case $1 in
    http) printf 'type = "http"\nurl = "http://127.0.0.1:%s/metrics"\n' "$ne_port" ;;
    prometheus) printf 'type = "prometheus"\nurl = "http://127.0.0.1:%s/metrics"\nconditions = ["node_load1 >= 0", "count(node_cpu_seconds_total{mode=\\"idle\\"}) >= 1"]\n' "$ne_port" ;;
    icmp) printf 'type = "icmp"\nhost = "127.0.0.1"\ncount = 1\n' ;;
    postgres) printf 'type = "postgres"\nhost = "127.0.0.1"\nuser = "postgres"\ndatabase = "postgres"\nquery = "SELECT 1 AS one"\nconditions = ["one == 1"]\ntls = "disable"\n' ;;
    mysql) printf 'type = "mysql"\nhost = "127.0.0.1"\nuser = "root"\nquery = "SELECT 1 AS one"\nconditions = ["one == 1"]\ntls = "disable"\n' ;;
    log) printf 'type = "log"\nfile = "%s"\npatterns = ["ERROR", "Exception"]\n' "$logfile" ;;
    esac
}

declare -A rate per_cpu ok_share
for t in $TYPES; do
    cfg="$BENCH_TMP/$t.toml"
    {
        printf '[server]\ndata_dir = "%s"\nself_check = false\nmax_concurrency = 64\n\n' "$BENCH_TMP/data-$t"
        for ((i = 0; i < CHECKS; i++)); do
            printf '[[check]]\nasset = "a%d"\nname = "%s"\ninterval = "1s"\ntimeout = "1s"\n' "$i" "$t"
            check_body "$t"
            printf '\n'
        done
    } >"$cfg"
    port=$(free_port 18200)
    start_vitals "$cfg" "$port" "$BENCH_TMP/vitals-$t.log"
    writer=""
    if [[ $t == log ]]; then
        # Bounded: 10 lines every 100 ms for the window and the warm-up, then it stops.
        (for ((n = 0; n < (WINDOW + 8) * 10; n++)); do
            for ((k = 0; k < 10; k++)); do echo "2026-11-21 08:00:00,000 INFO [x] line $n.$k"; done >>"$logfile"
            echo "2026-11-21 08:00:00,000 ERROR [x] failure $n" >>"$logfile"
            sleep 0.1
        done) &
        writer=$!
        BENCH_PIDS+=("$writer")
    fi
    pause 5 # every check has started (first runs are spread over 5 s)
    # "all ok" from one scrape, so both counts are of the same moment.
    probes() {
        curl -fsS "http://127.0.0.1:$port/metrics" |
            awk -v t="$t" '$1 ~ "^vitals_probes_total\\{type=\""t"\"" { n += $2; if ($1 ~ "status=\"ok\"") k += $2 } END { printf "%d %d", n, k }'
    }
    c0=$(cpu_ticks "$VITALS_PID"); read -r p0 k0 <<<"$(probes)"; t0=$(now_s)
    pause "$WINDOW"
    c1=$(cpu_ticks "$VITALS_PID"); read -r p1 k1 <<<"$(probes)"; t1=$(now_s)
    cpu_s=$(calc "($c1 - $c0) / $CLK_TCK")
    n=$((p1 - p0))
    rate[$t]=$(calc "$n / ($t1 - $t0)")
    per_cpu[$t]=$(calc "$n / ($cpu_s > 0 ? $cpu_s : 0.000001)")
    ok_share[$t]=$(calc "($k1 - $k0) * 100 / ($n > 0 ? $n : 1)")
    log "$t: $n probes in ${WINDOW}s, ${cpu_s} CPU-s, ${ok_share[$t]}% ok"
    stop_pid "$VITALS_PID"
    [[ -z $writer ]] || stop_pid "$writer"
done

printf '%-11s %12s %18s %10s %8s\n' type probes/s probes/CPU-s vs-http ok%
for t in $TYPES; do
    vs="-"
    [[ -z ${per_cpu[http]:-} ]] || vs=$(calc "${per_cpu[$t]} / ${per_cpu[http]}")
    printf '%-11s %12.1f %18.0f %10s %8.1f\n' "$t" "${rate[$t]}" "${per_cpu[$t]}" "$vs" "${ok_share[$t]}"
done
