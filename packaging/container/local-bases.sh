#!/usr/bin/env bash
# Stand-ins for the Dockerfile's base images where their registries (docker.io, gcr.io) are out
# of reach, made from Debian's own mirror with debootstrap:
#   localhost/rust-local:1-bookworm     bookworm with gcc and this machine's Rust toolchain
#                                        (`rustc --print sysroot`), as RUST_IMAGE
#   localhost/debian-runtime:bookworm   bookworm minbase with CA certificates, as RUNTIME_IMAGE
# The build image also trusts this machine's added CA certificates (/usr/local/share/
# ca-certificates: a proxy's, where there is one), so that cargo reaches crates.io from inside.
# Images that exist already are kept. Needs root, buildah and debootstrap.
#
#   packaging/container/local-bases.sh
#   RUST_IMAGE=localhost/rust-local:1-bookworm RUNTIME_IMAGE=localhost/debian-runtime:bookworm \
#       packaging/container/test-image.sh
set -euo pipefail
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }

# Commits the directory $1 as image $2 (further `buildah config` arguments after it).
commit() {
    local root="$1" image="$2"
    shift 2
    local c m
    c="$(buildah from scratch)"
    m="$(buildah mount "$c")"
    cp -a "$root/." "$m/"
    rm -rf "$m"/var/cache/apt/archives/*.deb "$m"/var/lib/apt/lists/*
    buildah umount "$c" >/dev/null
    [ $# -gt 0 ] && buildah config "$@" "$c"
    buildah commit -q "$c" "$image" >/dev/null
    buildah rm "$c" >/dev/null
    echo "local-bases: $image"
}

if ! exists localhost/rust-local:1-bookworm; then
    root="$work/build"
    debootstrap --variant=minbase --include=ca-certificates,gcc,libc6-dev bookworm "$root" "$mirror" >/dev/null
    mkdir -p "$root/opt/rust" "$root/usr/local/cargo"
    cp -a "$(rustc --print sysroot)/." "$root/opt/rust/"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
    chroot "$root" update-ca-certificates >/dev/null
    commit "$root" localhost/rust-local:1-bookworm \
        --env PATH=/opt/rust/bin:/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env CARGO_HOME=/usr/local/cargo
    rm -rf "$root"
fi
if ! exists localhost/debian-runtime:bookworm; then
    root="$work/runtime"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >/dev/null
    commit "$root" localhost/debian-runtime:bookworm
fi
