#!/usr/bin/env bash
# Site agents: what an agent costs beside the server doing the same work, and how fast its disk
# buffer is replayed after an outage.
#
# 1. server alone: `vitals serve` runs CHECKS http checks every INTERVAL against a private
#    nginx on loopback — CPU (utime+stime, all threads) and RSS of the server over WINDOW s.
#    This is the anchor.
# 2. agent: the same checks with `locations = ["bench"]`, run by `vitals agent`; the server only
#    takes the results. CPU and RSS of the agent, and of the server beside it.
# 3. replay: the checks run every REPLAY_INTERVAL; the server stops for OUTAGE s while the agent
#    goes on probing into its buffer; then the server starts again and the buffer drains. Replay
#    rate = results delivered per second from the server's start until the buffer is drained
#    (new results keep arriving meanwhile), beside the target.
#
#   bench/agent/run.sh                         # ~5 min
#   CHECKS=1000 INTERVAL=10s WINDOW=60 OUTAGE=60 REPLAY_INTERVAL=1s bench/agent/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../probe-vs-blackbox/lib.sh
source "$root/bench/probe-vs-blackbox/lib.sh"
trap bench_cleanup EXIT

CHECKS=${CHECKS:-1000}
INTERVAL=${INTERVAL:-10s}
WINDOW=${WINDOW:-60}
OUTAGE=${OUTAGE:-60}
need_tools curl:curl nginx:nginx ss:iproute2 python3:python3
find_vitals "$root"
bench_tmpdir
PAGE_KB=$(($(getconf PAGESIZE) / 1024))
log "load average: $(cut -d' ' -f1-3 /proc/loadavg); $CHECKS http checks every $INTERVAL, ${WINDOW}s windows, ${OUTAGE}s outage"

ng_port=$(free_port 18600)
start_nginx "$ng_port" 1
ADMIN=bench-admin-secret-0123456789
AGENT=bench-agent-secret-0123456789

write_config() { # file data located
    local i
    {
        printf '[server]\ndata_dir = "%s"\nself_check = false\nmax_concurrency = 64\n\n' "$2"
        printf '[[token]]\nname = "admin"\nrole = "admin"\nsecret = "%s"\n\n' "$ADMIN"
        printf '[[token]]\nname = "bench-agent"\nrole = "reporter"\nsecret = "%s"\nlocation = "bench"\nrate_limit = 0\n\n' "$AGENT"
        for ((i = 0; i < CHECKS; i++)); do
            printf '[[check]]\nasset = "n%05d"\nname = "http"\ntype = "http"\nurl = "http://127.0.0.1:%s/"\ninterval = "%s"\ntimeout = "1s"\n' \
                "$i" "$ng_port" "$INTERVAL"
            [[ $3 == 1 ]] && printf 'locations = ["bench"]\n'
            printf '\n'
        done
    } >"$1"
}

rss_kb() { awk '{print $2}' "/proc/$1/statm" | awk -v p="$PAGE_KB" '{print $1 * p}'; }

# measure PID SECONDS -> "cpu_seconds rss_kb" (RSS at the end of the window)
measure() {
    local c0 c1
    c0=$(cpu_ticks "$1")
    pause "$2"
    c1=$(cpu_ticks "$1")
    echo "$(calc "($c1 - $c0) / $CLK_TCK") $(rss_kb "$1")"
}

start_server() { # config port log
    "$VITALS_BIN" serve --config "$1" --listen "127.0.0.1:$2" >"$3" 2>&1 &
    VITALS_PID=$!
    BENCH_PIDS+=("$VITALS_PID")
    wait_http "http://127.0.0.1:$2/monitor" 60 "$VITALS_PID" || {
        tail -5 "$3" >&2
        die "vitals did not start"
    }
}

# --- 1. the server alone -------------------------------------------------------------------
write_config "$BENCH_TMP/alone.toml" "$BENCH_TMP/data-alone" 0
port=$(free_port 18700)
start_server "$BENCH_TMP/alone.toml" "$port" "$BENCH_TMP/alone.log"
pause 15 # every check has run once (first runs spread over 5 s) and the store is warm
read -r s_cpu s_rss <<<"$(measure "$VITALS_PID" "$WINDOW")"
stop_pid "$VITALS_PID"
log "server alone: ${s_cpu} CPU-s in ${WINDOW}s, RSS ${s_rss} KiB"

# --- 2. the agent --------------------------------------------------------------------------
write_config "$BENCH_TMP/located.toml" "$BENCH_TMP/data-located" 1
port=$(free_port 18700)
start_server "$BENCH_TMP/located.toml" "$port" "$BENCH_TMP/server.log"
SERVER_PID=$VITALS_PID
VITALS_LOG=info,vitals_agent=debug VITALS_AGENT_TOKEN=$AGENT "$VITALS_BIN" agent --server "http://127.0.0.1:$port" --location bench \
    --data-dir "$BENCH_TMP/agent" --retry-max 1s --refresh 5s >"$BENCH_TMP/agent.log" 2>&1 &
AGENT_PID=$!
BENCH_PIDS+=("$AGENT_PID")
pause 15
c0=$(cpu_ticks "$SERVER_PID")
read -r a_cpu a_rss <<<"$(measure "$AGENT_PID" "$WINDOW")"
c1=$(cpu_ticks "$SERVER_PID")
b_cpu=$(calc "($c1 - $c0) / $CLK_TCK")
b_rss=$(rss_kb "$SERVER_PID")
log "agent: ${a_cpu} CPU-s, RSS ${a_rss} KiB; server beside it: ${b_cpu} CPU-s, RSS ${b_rss} KiB"

# --- 3. replay -----------------------------------------------------------------------------
# The same checks every REPLAY_INTERVAL (default 1 s), so an outage of OUTAGE s leaves a backlog
# of CHECKS x OUTAGE results (60,000: ten minutes of the 10 s schedule).
REPLAY_INTERVAL=${REPLAY_INTERVAL:-1s}
buffered() {
    python3 - "$BENCH_TMP/agent/agent-buffer.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10)
print(c.execute("SELECT COUNT(*) FROM results").fetchone()[0])
PY
}
stop_pid "$SERVER_PID"
INTERVAL_SAVED=$INTERVAL
INTERVAL=$REPLAY_INTERVAL write_config "$BENCH_TMP/replay.toml" "$BENCH_TMP/data-replay" 1
INTERVAL=$INTERVAL_SAVED
start_server "$BENCH_TMP/replay.toml" "$port" "$BENCH_TMP/server-replay.log"
# The agent takes the new schedule with its next refresh.
for ((i = 0; i < 300; i++)); do
    (($(grep -c "new assignment" "$BENCH_TMP/agent.log") >= 2)) && break
    sleep 0.1
done
pause 5
stop_pid "$VITALS_PID"
pause "$OUTAGE"
depth0=$(buffered)
start_server "$BENCH_TMP/replay.toml" "$port" "$BENCH_TMP/server-replay2.log"
t0=$(now_s)
per_s=$(calc "$CHECKS / ${REPLAY_INTERVAL%s}")
# Drained: the buffer holds at most what two probing seconds add.
for ((i = 0; i < 6000; i++)); do
    left=$(buffered)
    [[ $(calc "$left <= 2 * $per_s") == 1.000000 ]] && break
    sleep 0.1
done
t1=$(now_s)
el=$(calc "$t1 - $t0")
delivered=$(calc "$depth0 + $per_s * $el - $left")
replay=$(calc "$delivered / $el")
refused=$(grep -c "dropped from the buffer" "$BENCH_TMP/agent.log" || true)
log "replay: $depth0 buffered after ${OUTAGE}s; drained in ${el}s (server start and the agent's next retry included); refused: $refused"
# The replay itself, from the agent's log (debug: one line per committed batch): from the first
# batch committed after the outage to the first that was not full (caught up), the results of
# the batches in between over the time between — no server start, no retry wait.
read -r wire_rate wire_n wire_s <<<"$(python3 - "$BENCH_TMP/agent.log" <<'PY'
import re, sys
from datetime import datetime
lines = open(sys.argv[1], errors="replace").read().splitlines()
last_fail = max((i for i, l in enumerate(lines) if "server not reached" in l), default=-1)
batches = []
for l in lines[last_fail + 1:]:
    if "results delivered" not in l:
        continue
    m = re.search(r"sent=(\d+)", l)
    t = datetime.fromisoformat(l.split()[0].replace("Z", "+00:00")).timestamp()
    batches.append((t, int(m.group(1))))
full = max((n for _, n in batches), default=0)
end = next((i for i, (_, n) in enumerate(batches) if n < full), len(batches) - 1)
if end < 1:
    print("0 0 0")
else:
    n = sum(k for _, k in batches[1:end + 1])
    s = batches[end][0] - batches[0][0]
    print(f"{n / s if s > 0 else 0:.0f} {n} {s:.3f}")
PY
)"
log "replay on the wire: $wire_n results in ${wire_s}s after the first batch = $wire_rate/s"

printf '\n%-34s %14s %14s %10s\n' "" "CPU-s/${WINDOW}s" "RSS MiB" "ratio CPU"
printf '%-34s %14.2f %14.1f %10s\n' "server alone (anchor)" "$s_cpu" "$(calc "$s_rss / 1024")" "1.00"
printf '%-34s %14.2f %14.1f %10.2f\n' "agent" "$a_cpu" "$(calc "$a_rss / 1024")" "$(calc "$a_cpu / $s_cpu")"
printf '%-34s %14.2f %14.1f %10.2f\n' "server taking the agent's results" "$b_cpu" "$(calc "$b_rss / 1024")" "$(calc "$b_cpu / $s_cpu")"
printf '\n%-34s %14s\n' "" "results/s"
printf '%-34s %14.0f\n' "probing rate during the outage" "$per_s"
printf '%-34s %14.0f\n' "target (performance.md P10)" 20000
printf '%-34s %14.0f   (%.1fx the probing rate; %d buffered after a %ss outage; server start and retry wait included)\n' \
    "buffer replay, drain" "$replay" "$(calc "$replay / $per_s")" "$depth0" "$OUTAGE"
printf '%-34s %14.0f   (%d results in %ss, first committed batch to caught up)\n' \
    "buffer replay, on the wire" "$wire_rate" "$wire_n" "$wire_s"
