#!/usr/bin/env bash
# P2 on PostgreSQL beside SQLite: bench/scale/run.sh (10,000 HTTP checks every 10 s against a
# private nginx) once on the embedded SQLite store and once on a fresh PostgreSQL database, in
# one run, then the two summaries side by side. Needs PostgreSQL on 127.0.0.1:5432 with trust
# auth for `postgres` (or VITALS_BENCH_PG_ADMIN=postgres://user:pw@host/postgres).
# DURATION=… seconds sampled per backend (default 120).
set -euo pipefail
cd "$(dirname "$0")/../.."
ADMIN=${VITALS_BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
DB=vitals_bench_p2_$$
BASE=${ADMIN%/*}
export DURATION=${DURATION:-120}
psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
trap 'psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
echo "== SQLite"
bench/scale/run.sh | tee /tmp/vitals-p2-sqlite.$$ | grep -E '^P2 '
echo "== PostgreSQL ($BASE/$DB)"
STORE="$BASE/$DB" bench/scale/run.sh | tee /tmp/vitals-p2-pg.$$ | grep -E '^P2 '
echo "== side by side (SQLite | PostgreSQL)"
paste -d'|' <(grep -E '^P2 (lateness|RSS|CPU|skipped)' /tmp/vitals-p2-sqlite.$$) \
    <(grep -E '^P2 (lateness|RSS|CPU|skipped)' /tmp/vitals-p2-pg.$$ | sed 's/^P2 [^:]*://')
rm -f /tmp/vitals-p2-sqlite.$$ /tmp/vitals-p2-pg.$$
