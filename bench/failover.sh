#!/usr/bin/env bash
# P9 — high availability: three `vitals serve` replicas on one PostgreSQL, a kill -9 loop under
# push and probe load (crates/vitals/tests/replicas.rs). Prints the decider failover times, the
# longest silence of any check, lost acknowledged results and duplicate notifications.
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth for `postgres`, or VITALS_TEST_PG=…).
# KILLS=… replicas killed (default 20); the lease is the test's (3 s), checks run every 1 s.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
VITALS_REPLICA_KILLS="${KILLS:-20}" cargo nextest run -p vitals --test replicas \
    --no-capture three_replicas 2>&1 | grep -E '^replicas:|PASS|FAIL'
