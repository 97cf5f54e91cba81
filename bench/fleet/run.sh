#!/usr/bin/env bash
# One fleet collection cycle over 1,000 emulated AKTIN nodes (emulated broker on loopback,
# fresh SQLite store): prints seconds per cycle vs the 5 s target.
# Usage: bench/fleet/run.sh [NODES] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo run --quiet --release -p vitals-fleet --example fleet_bench -- "${1:-1000}" "${2:-16}"
