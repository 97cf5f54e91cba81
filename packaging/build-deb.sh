#!/usr/bin/env bash
# Builds the Debian package of Vitals: the binary, its manual pages and shell completions
# (generated from the binary's own clap definition), the systemd unit, the default
# configuration (/etc/vitals/vitals.toml, a conffile) and the maintainer scripts
# (packaging/debian/). Prints the path of the .deb.
#
#   packaging/build-deb.sh                 # release build (what you ship)
#   PROFILE=dev packaging/build-deb.sh     # the debug build (quick, for CI's install test)
#
# Needs cargo-deb (`cargo install cargo-deb --locked`).
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${PROFILE:-release}"
case "$profile" in
    release) dir=release ;;
    dev) dir=debug ;;
    *) dir="$profile" ;;
esac

command -v cargo-deb >/dev/null || { echo "build-deb: cargo-deb is missing: cargo install cargo-deb --locked" >&2; exit 1; }
cargo build -q --profile "$profile" -p vitals
bin="target/$dir/vitals"

# Manual pages and completions from the binary itself, so they always match it.
rm -rf target/assets
mkdir -p target/assets/man target/assets/completions
"$bin" man target/assets/man >/dev/null
gzip -9n target/assets/man/*.1
"$bin" completions bash >target/assets/completions/vitals.bash
"$bin" completions zsh >target/assets/completions/_vitals
"$bin" completions fish >target/assets/completions/vitals.fish

args=(-p vitals --no-build --profile "$profile")
# The debug binary keeps its symbols (cargo-deb strips release builds by default) and is
# compressed quickly: that package is for tests, not for shipping.
[ "$profile" = release ] || args+=(--no-strip --fast)
cargo deb "${args[@]}" 2>&1 | tail -n 1
