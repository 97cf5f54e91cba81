#!/usr/bin/env bash
# Builds the container image from the Dockerfile with buildah and checks it as a user would run
# it: the image's metadata (non-root user, volume, port, health check, entry point), then the
# image's own filesystem and command as that user, with the data volume writable, /monitor
# answering, the health check command passing, and the configuration refused without its token.
#
#   packaging/container/test-image.sh
#   RUST_IMAGE=… RUNTIME_IMAGE=… packaging/container/test-image.sh   # local stand-ins for the
#                                                                       # base images
#   IMAGE=localhost/vitals:test SKIP_BUILD=1 packaging/container/test-image.sh
#
# Running: `podman run` where the machine lets a container runtime start (cgroups, rlimits);
# otherwise `buildah run --isolation chroot`, which runs the image's filesystem and command
# without one (the health check command is run the same way). Prints "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
image="${IMAGE:-localhost/vitals:test}"
command -v buildah >/dev/null || { echo "needs buildah (apt-get install buildah)"; exit 2; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    # Docker format: the OCI image format has no HEALTHCHECK.
    args=(--isolation chroot --format docker -t "$image" -f Dockerfile)
    [ -n "${RUST_IMAGE:-}" ] && args+=(--build-arg "RUST_IMAGE=$RUST_IMAGE")
    [ -n "${RUNTIME_IMAGE:-}" ] && args+=(--build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE")
    buildah bud "${args[@]}" .
fi

passed=0
failed=0
check() {
    local what="$1"
    shift
    if "$@" >/dev/null 2>&1; then
        echo "ok   $what"
        passed=$((passed + 1))
    else
        echo "FAIL $what"
        failed=$((failed + 1))
    fi
}

meta="$(buildah inspect --type image "$image")"
field() {
    python3 -c "import json,sys; c=json.loads(sys.argv[1])['Docker']['config']; print(json.dumps(c.get(sys.argv[2])))" "$meta" "$1"
}
check "runs as the non-root user 65532" test "$(field User)" = '"65532:65532"'
check "declares the data volume /var/lib/vitals" grep -q '/var/lib/vitals' <<<"$(field Volumes)"
check "exposes 8080" grep -q '8080' <<<"$(field ExposedPorts)"
check "health check runs vitals healthcheck on /monitor" grep -q 'healthcheck.*/monitor' <<<"$(field Healthcheck)"
check "entry point is the binary, serving the image's configuration" \
    test "$(field Entrypoint) $(field Cmd)" = '["/usr/bin/vitals"] ["serve", "--config", "/etc/vitals/vitals.toml"]'

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
token="container-test-$(date +%s%N)"
c="$(buildah from "$image")"
tmp="$(mktemp -d)"
pid=""
cleanup() {
    [ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    buildah rm "$c" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
# The image's configuration, on a free loopback port (the container shares the host's network).
mnt="$(buildah mount "$c")"
sed "s/0.0.0.0:8080/127.0.0.1:$port/" "$mnt/etc/vitals/vitals.toml" >"$tmp/vitals.toml"
cp "$tmp/vitals.toml" "$mnt/etc/vitals/vitals.toml"
buildah umount "$c" >/dev/null

run() { buildah run --isolation chroot --user 65532:65532 --env "VITALS_ADMIN_TOKEN=$token" "$c" -- "$@"; }

check "without VITALS_ADMIN_TOKEN the configuration is refused" \
    bash -c "! buildah run --isolation chroot --user 65532:65532 '$c' -- /usr/bin/vitals config check /etc/vitals/vitals.toml"
# Its own process group, so that stopping it stops buildah's helper and Vitals with it.
setsid buildah run --isolation chroot --user 65532:65532 --env "VITALS_ADMIN_TOKEN=$token" "$c" \
    -- /usr/bin/vitals serve --config /etc/vitals/vitals.toml >"$tmp/serve.log" 2>&1 &
pid=$!
up=0
for _ in $(seq 1 100); do
    if curl -fs -o /dev/null "http://127.0.0.1:$port/monitor"; then up=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
done
check "serves /monitor as user 65532" test "$up" = 1
check "the health check command passes" run /usr/bin/vitals healthcheck --url "http://127.0.0.1:$port/monitor"
check "an authenticated push is taken" curl -fs -o /dev/null -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' \
    -d '{"results":[{"asset":"container","check":"push","status":"ok"}]}' \
    "http://127.0.0.1:$port/api/v1/results"
check "the API refuses a caller without the token" \
    test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/v1/assets")" = 401
kill -TERM -- "-$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
pid=""
check "it stopped on SIGTERM" bash -c "! pgrep -f '[v]itals serve --config /etc/vitals/vitals.toml'"
# The push above was answered after its commit: the store in the volume takes writes as 65532.
check "the store lives in the data volume" \
    grep -q 'store opened store=sqlite:///var/lib/vitals/vitals.db' "$tmp/serve.log"
if [ "$failed" -gt 0 ]; then
    echo "--- serve log"; cat "$tmp/serve.log"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
