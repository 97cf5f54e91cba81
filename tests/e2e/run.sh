#!/usr/bin/env bash
# Browser end-to-end tests: builds `target/debug/vitals` (unless VITALS_BIN names a binary),
# starts `vitals demo` on a free loopback port, runs e2e.mjs in Debian's chromium through
# playwright-core, stops the demo. Prints "N passed, N failed"; exits 1 on any failure.
# Needs: apt-get install chromium; npm ci (or npm install) in this directory.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"
mkdir -p out

bin="${VITALS_BIN:-}"
if [ -z "$bin" ]; then
    (cd "$root" && cargo build -q -p vitals)
    bin="$root/target/debug/vitals"
fi
[ -d node_modules/playwright-core ] || npm install --no-audit --no-fund --silent

port="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
"$bin" demo --listen "127.0.0.1:$port" >out/demo.log 2>&1 &
demo=$!
stop() {
    if kill -0 "$demo" 2>/dev/null; then
        kill -TERM "$demo"
        wait "$demo" || true
    fi
}
trap stop EXIT

# Up when the overview answers (at most 30 s).
for _ in $(seq 1 300); do
    if curl -fs -o /dev/null "http://127.0.0.1:$port/monitor"; then break; fi
    kill -0 "$demo" 2>/dev/null || { echo "vitals demo exited:"; cat out/demo.log; exit 1; }
    sleep 0.1
done

VITALS_URL="http://127.0.0.1:$port" node e2e.mjs
