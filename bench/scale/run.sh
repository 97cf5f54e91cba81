#!/usr/bin/env bash
# P2 — scale of the scheduler: 10,000 HTTP checks every 10 s (1,000 probes/s) against a private
# nginx on loopback, sustained for DURATION seconds. Every 10 s it samples the Vitals process:
# RSS, CPU % over the interval, probes, skipped ticks, schedule lateness p99. See
# bench/README.md and ../shared/spec/performance.md (P2).
#
# Usage: bench/scale/run.sh [DURATION_SECONDS]      (default 300; 60 for a quick run)
# Environment (all optional):
#   DURATION=300        same as the argument
#   CHECKS=10000        http checks
#   INTERVAL=10s        each check's interval
#   TIMEOUT=5s          each check's timeout
#   WARMUP=20           seconds after Vitals answers before sampling starts (first runs are
#                       spread over the first 5 s)
#   SAMPLE=10           seconds between samples
#   NGINX_WORKERS=1     nginx worker processes
#   MAX_CONCURRENCY=512 Vitals [server] max_concurrency
#   STAGING_ROWS=…      Vitals [server] staging_rows (default: Vitals' own, 16384)
#   VITALS_BIN=…        binary to test (default target/release/vitals, built when missing)
#   LABEL=P2            the figure's name in the output (bench/scale/p2b.sh sets P2b)
#   TARGET_CPU=12 TARGET_RSS=120 TARGET_P99=50
#                       targets printed beside the figures (% of one core, MB, ms)
#   KEEP_TMP=1          keep the temp dir (config, log, SQLite file)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../probe-vs-blackbox/lib.sh
source "$HERE/../probe-vs-blackbox/lib.sh"

DURATION=${1:-${DURATION:-300}}
CHECKS=${CHECKS:-10000}
INTERVAL=${INTERVAL:-10s}
TIMEOUT=${TIMEOUT:-5s}
WARMUP=${WARMUP:-20}
SAMPLE=${SAMPLE:-10}
NGINX_WORKERS=${NGINX_WORKERS:-1}
LABEL=${LABEL:-P2}
TARGET_CPU=${TARGET_CPU:-12}
TARGET_RSS=${TARGET_RSS:-120}
TARGET_P99=${TARGET_P99:-50}
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge $SAMPLE ]] || die "DURATION must be whole seconds >= $SAMPLE, got '$DURATION'"
[[ $INTERVAL =~ ^([0-9]+)s$ ]] || die "INTERVAL must be whole seconds like 10s, got '$INTERVAL'"
INTERVAL_S=${BASH_REMATCH[1]}
EXPECTED_RATE=$(calc "$CHECKS / $INTERVAL_S")

need_tools nginx:nginx-light curl:curl jq:jq ss:iproute2
find_vitals "$ROOT"
bench_tmpdir
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

NGINX_PORT=$(free_port 18180)
start_nginx "$NGINX_PORT" "$NGINX_WORKERS"
TARGET="http://127.0.0.1:$NGINX_PORT/"
VITALS_PORT=$(free_port 18190)
write_vitals_config "$BENCH_TMP/vitals.toml" "$CHECKS" "$INTERVAL" "$TARGET" "$BENCH_TMP/vitals-data" "$TIMEOUT"
start_vitals "$BENCH_TMP/vitals.toml" "$VITALS_PORT" "$BENCH_TMP/vitals.log"
VERSION=$(curl -fsS "http://127.0.0.1:$VITALS_PORT/version" | jq -r '"\(.version) (\(.git_commit), \(.build_profile))"')
echo "$LABEL setup: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), nginx $NGINX_WORKERS worker(s) on $TARGET"
echo "$LABEL vitals $VERSION: $CHECKS http checks every $INTERVAL ($(commas "$EXPECTED_RATE")/s), warm-up ${WARMUP}s, then ${DURATION}s sampled every ${SAMPLE}s"
pause "$WARMUP"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# Anonymous memory (heap) apart from file-backed and shared pages (SQLite's WAL index): tells
# whether RSS growth is the process' own data.
anon_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status"; }
# Threads: tokio's blocking pool (SQLite readers) grows and shrinks; a memory step that comes
# with a new thread points at per-thread allocator state.
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

s=$(vitals_status "$VITALS_PORT")
c_prev=$(cpu_ticks "$VITALS_PID")
t_prev=$(now_s)
start_t=$t_prev
start_cpu=$c_prev
start_probes=$(jq .scheduler.probes_total <<<"$s")
start_skipped=$(jq .scheduler.skipped_ticks <<<"$s")
p_prev=$start_probes
samples=$((DURATION / SAMPLE))
max_p99=0
max_rss=0
sum_cpu=0
rss_series=()

printf '%6s %9s %9s %7s %4s %8s %10s %9s %8s %8s %8s %7s %7s\n' \
    "t(s)" "RSS(MB)" "anon(MB)" "sql(MB)" "thr" "CPU%" "probes" "probes/s" "skipped" "p50(ms)" "p99(ms)" "max(ms)" "queued"
for ((i = 1; i <= samples; i++)); do
    # Sleep to the sample's target time, so samples do not drift with the time they take.
    wake=$(calc "$start_t + $i * $SAMPLE - $(now_s)")
    awk -v w="$wake" 'BEGIN { exit !(w > 0) }' && pause "$wake"
    c=$(cpu_ticks "$VITALS_PID")
    t=$(now_s)
    rss=$(rss_kb "$VITALS_PID")
    anon=$(anon_kb "$VITALS_PID")
    s=$(vitals_status "$VITALS_PORT")
    # sql: what SQLite holds of the anonymous memory (its page caches; null on PostgreSQL).
    read -r probes skipped p50 p99 lmax queued sql < <(jq -r '[.scheduler.probes_total, .scheduler.skipped_ticks,
        .scheduler.lateness.p50_ms, .scheduler.lateness.p99_ms, .scheduler.lateness.max_ms,
        .pipeline.queued, (.memory.store_bytes // 0)] | @tsv' <<<"$s")
    cpu_pct=$(calc "100 * ($c - $c_prev) / $CLK_TCK / ($t - $t_prev)")
    rate=$(calc "($probes - $p_prev) / ($t - $t_prev)")
    rss_mb=$(calc "$rss * 1024 / 1e6")
    printf '%6.0f %9.1f %9.1f %7.1f %4s %8.1f %10s %9.0f %8s %8.1f %8.1f %7.1f %7s\n' \
        "$(calc "$t - $start_t")" "$rss_mb" "$(calc "$anon * 1024 / 1e6")" "$(calc "$sql / 1e6")" "$(threads "$VITALS_PID")" "$cpu_pct" "$probes" "$rate" "$skipped" "$p50" "$p99" "$lmax" "$queued"
    max_p99=$(calc "$p99 > $max_p99 ? $p99 : $max_p99")
    max_rss=$(calc "$rss_mb > $max_rss ? $rss_mb : $max_rss")
    rss_series+=("$rss_mb")
    sum_cpu=$(calc "$sum_cpu + $cpu_pct")
    c_prev=$c
    t_prev=$t
    p_prev=$probes
done

end_t=$t_prev
end_cpu=$c_prev
end_probes=$p_prev
end_skipped=$skipped
hwm_mb=$(calc "$(hwm_kb "$VITALS_PID") * 1024 / 1e6")
read -r ok warn crit unk < <(vitals_http_outcomes "$VITALS_PORT")
s=$(vitals_status "$VITALS_PORT")
stored=$(jq .pipeline.observations_stored <<<"$s")
store_errors=$(jq .pipeline.store_errors <<<"$s")
db_mb=$(calc "$(du -sk "$BENCH_TMP/vitals-data" | awk '{print $1}') * 1024 / 1e6")

elapsed=$(calc "$end_t - $start_t")
done_probes=$((end_probes - start_probes))
expected=$(calc "$EXPECTED_RATE * $elapsed")
mean_cpu=$(calc "100 * ($end_cpu - $start_cpu) / $CLK_TCK / $elapsed")
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b ? "met" : "MISSED") }'; }

# Flat memory: the mean RSS of the last tenth of the samples against the mean of the second
# tenth (the first tenth is the warm-up of caches and pools), and the range after the first tenth.
read -r rss_early rss_late rss_min rss_max_after < <(printf '%s\n' "${rss_series[@]}" | awk '
    { v[NR] = $1 }
    END {
        t = int(NR / 10); if (t < 1) t = 1
        for (i = t + 1; i <= 2 * t && i <= NR; i++) { e += v[i]; ne++ }
        for (i = NR - t + 1; i <= NR; i++) { l += v[i]; nl++ }
        lo = 1e18; hi = 0
        for (i = (NR > t ? t + 1 : 1); i <= NR; i++) { if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i] }
        printf "%.1f %.1f %.1f %.1f\n", (ne ? e / ne : v[1]), l / nl, lo, hi
    }')
rss_change=$(calc "100 * ($rss_late - $rss_early) / $rss_early")
flat=$(awk -v c="$rss_change" 'BEGIN { print ((c <= 5 && c >= -5) ? "met" : "MISSED") }')

echo
printf '%s lateness p99 (ms)  : max over samples %.1f (target < %s): %s\n' "$LABEL" "$max_p99" "$TARGET_P99" "$(verdict "$max_p99" "$TARGET_P99")"
printf '%s RSS max (MB)       : %.1f (peak VmHWM %.1f) (target <= %s): %s\n' "$LABEL" "$max_rss" "$hwm_mb" "$TARGET_RSS" "$(verdict "$max_rss" "$(calc "$TARGET_RSS + 0.05")")"
printf '%s RSS flat           : second tenth of the samples %.1f MB, last tenth %.1f MB (%+.1f%%), range after the first tenth %.1f-%.1f MB (target within +-5%%): %s\n' \
    "$LABEL" "$rss_early" "$rss_late" "$rss_change" "$rss_min" "$rss_max_after" "$flat"
printf '%s CPU (%% of one core): mean %.1f over %.0fs (mean of samples %.1f) (target < %s): %s\n' \
    "$LABEL" "$mean_cpu" "$elapsed" "$(calc "$sum_cpu / $samples")" "$TARGET_CPU" "$(verdict "$mean_cpu" "$TARGET_CPU")"
printf '%s skipped ticks      : %s in the window (%s since start)\n' "$LABEL" "$((end_skipped - start_skipped))" "$end_skipped"
printf '%s probes             : %s completed vs %s expected (%s/s x %.0fs) = %.2f%%\n' \
    "$LABEL" "$(commas "$done_probes")" "$(commas "$expected")" "$(commas "$EXPECTED_RATE")" "$elapsed" \
    "$(calc "100 * $done_probes / $expected")"
printf '%s outcomes since start: %s ok, %s warn, %s crit, %s unknown; %s observations stored, %s store errors, data dir %.1f MB\n' \
    "$LABEL" "$(commas "$ok")" "$(commas "$warn")" "$(commas "$crit")" "$(commas "$unk")" "$(commas "$stored")" "$store_errors" "$db_mb"
echo "$LABEL anchors (context, performance.md): Uptime Kuma ~250 monitors ≈ 400 MiB and at most one core; Gatus CPU spikes at ~500 endpoints"
