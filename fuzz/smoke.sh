#!/usr/bin/env bash
# Builds every fuzz target and runs each on its seed corpus for a short while (10 s by default).
# Exits non-zero when any target crashes, panics, times out or runs out of memory; the input
# that did it is left in fuzz/artifacts/<target>/ and the end of the log is printed.
#
#   fuzz/smoke.sh                         # CI: build, then 10 s per target
#   FUZZ_SECONDS=300 fuzz/smoke.sh        # a longer campaign
#   FUZZ_TARGETS="config sla_line" fuzz/smoke.sh
#   FUZZ_NO_BUILD=1 fuzz/smoke.sh         # reuse the binaries of the last build
#
# Works on a fresh machine: installs cargo-fuzz (from crates.io) and a C++ compiler (libFuzzer
# is C++) when missing. The machine has only a stable toolchain; cargo-fuzz passes -Z flags,
# which RUSTC_BOOTSTRAP=1 allows.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-10}"
export RUSTC_BOOTSTRAP=1
# The fuzz crate is its own workspace with its own target dir, whatever the caller's setting.
unset CARGO_TARGET_DIR
# Options every build and run shares. No sanitizer: the code under test is safe Rust (plus
# SQLite), and what is looked for is panics, overflows (debug assertions are on), hangs and
# unbounded memory; AddressSanitizer would halve the executions for little gain.
build_opts=(--release --debug-assertions --sanitizer none)

if [ -z "${FUZZ_NO_BUILD:-}" ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
    if ! command -v c++ >/dev/null; then
        echo "fuzz: installing g++ (libFuzzer is built from C++ source)"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends g++
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "fuzz: installing cargo-fuzz"
        cargo install cargo-fuzz --locked
    fi
    echo "fuzz: building all targets"
    cargo fuzz build "${build_opts[@]}"
fi

triple="$(rustc -vV | sed -n 's/^host: //p')"
bin="target/$triple/release"
targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"

failed=()
printf '%-15s %12s %8s %10s %s\n' target execs seconds execs/s result
for t in $targets; do
    if [ ! -x "$bin/$t" ]; then
        echo "fuzz: no binary $bin/$t (build first)" >&2
        exit 2
    fi
    # New inputs go to work/<target> (not committed); corpus/<target> holds the seeds.
    mkdir -p "work/$t" "artifacts/$t"
    dict=()
    if [ -f "dict/$t.dict" ]; then dict=("-dict=dict/$t.dict"); fi
    log="work/$t.log"
    result=ok
    if ! "$bin/$t" "work/$t" "corpus/$t" "${dict[@]}" \
        -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
        result=FAILED
        failed+=("$t")
    fi
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    took="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)"
    printf '%-15s %12s %8s %10s %s\n' "$t" "${execs:--}" "${took:--}" "${rate:--}" "$result"
done

if [ ${#failed[@]} -gt 0 ]; then
    for t in "${failed[@]}"; do
        echo
        echo "=== fuzz target $t failed; input in fuzz/artifacts/$t/; end of fuzz/work/$t.log:"
        tail -n 40 "work/$t.log"
    done
    exit 1
fi
echo "fuzz: every target ran ${seconds}s without a crash"
