#!/usr/bin/env bash
# P3a (batch ingest) and P8 (bytes per stored observation) on PostgreSQL beside SQLite, same
# observations, same run (crates/vitals-store-postgres/examples/ingest.rs). Needs PostgreSQL on
# 127.0.0.1:5432 (trust auth for `postgres`, or VITALS_BENCH_PG=postgres://user:pw@host/db).
# OBS=… observations per backend (default 200,000).
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo build --release -q -p vitals-store-postgres --example ingest
exec target/release/examples/ingest
