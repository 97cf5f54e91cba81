#!/usr/bin/env bash
# CI test of the Debian package (run as root on a Debian machine; called from .ci/run):
#   1. build it (packaging/build-deb.sh; PROFILE=dev by default here: the package's content
#      and scripts are the same, the debug binary is just quicker to get),
#   2. install it with dpkg -i: the vitals user, /var/lib/vitals, the conffile, man pages,
#      completions and the unit are there,
#   3. `systemd-analyze verify` accepts the unit (no systemd runs here: verify works offline),
#   4. the installed binary serves with the installed configuration as the vitals user (as the
#      unit would start it: same user, working directory and command line) and /monitor says OK,
#   5. dpkg -r removes the package but keeps the data (and the changed conffile), and a
#      reinstall serves the same data again; dpkg --purge still keeps the database.
# Prints "N passed, N failed" last; exits 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export PROFILE="${PROFILE:-dev}"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
check() { local what="$1"; shift; if "$@" >/tmp/vitals-deb-check.log 2>&1; then ok "$what"; else fail "$what"; sed 's/^/     /' /tmp/vitals-deb-check.log | tail -n 20; fi; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

if [ "$(id -u)" != 0 ]; then echo "test-deb: needs root (dpkg -i)"; exit 1; fi
if dpkg -s vitals >/dev/null 2>&1; then dpkg --purge vitals >/dev/null 2>&1 || true; fi

deb="$(packaging/build-deb.sh | grep -o '[^ ]*\.deb' | tail -n 1)"
if [ -z "$deb" ] || [ ! -f "$deb" ]; then fail "the package builds"; finish; fi
ok "the package builds: $deb"

check "the package holds the binary, unit, conffile, man pages and completions" bash -c "
    c=\$(dpkg-deb -c '$deb')
    grep -qE \" \\./(usr/)?lib/systemd/system/vitals\\.service\$\" <<<\"\$c\" || { echo 'missing the unit'; exit 1; }
    for f in ./usr/bin/vitals ./etc/vitals/vitals.toml \
             ./usr/share/man/man1/vitals.1.gz ./usr/share/man/man1/vitals-serve.1.gz \
             ./usr/share/bash-completion/completions/vitals ./usr/share/zsh/vendor-completions/_vitals \
             ./usr/share/fish/vendor_completions.d/vitals.fish; do
        grep -q \" \$f\$\" <<<\"\$c\" || { echo \"missing \$f\"; exit 1; }
    done
    dpkg-deb -I '$deb' conffiles | grep -qx /etc/vitals/vitals.toml"

check "dpkg -i installs it" dpkg -i "$deb"
check "the vitals system user exists" bash -c 'getent passwd vitals | grep -q ":/var/lib/vitals:/usr/sbin/nologin$"'
check "/var/lib/vitals belongs to vitals" bash -c '[ "$(stat -c %U:%a /var/lib/vitals)" = vitals:750 ]'
check "the configuration is root:vitals 0640" bash -c '[ "$(stat -c %U:%G:%a /etc/vitals/vitals.toml)" = root:vitals:640 ]'
check "the installed configuration is valid" /usr/bin/vitals config check /etc/vitals/vitals.toml
check "man vitals-serve reads" bash -c 'MANPAGER=cat man vitals-serve 2>/dev/null | grep -q -- "--listen" || zcat /usr/share/man/man1/vitals-serve.1.gz | grep -q listen'
check "bash completion is installed" bash -c 'grep -q "complete -F _vitals" /usr/share/bash-completion/completions/vitals'

unit=/lib/systemd/system/vitals.service
[ -f "$unit" ] || unit=/usr/lib/systemd/system/vitals.service
check "systemd-analyze verify accepts the unit" systemd-analyze verify "$unit"
check "the unit is sandboxed as intended" bash -c "
    for k in 'User=vitals' 'ProtectSystem=strict' 'StateDirectory=vitals' 'CapabilityBoundingSet=CAP_NET_RAW' \
             'AmbientCapabilities=CAP_NET_RAW' 'NoNewPrivileges=true' 'ExecReload=/bin/kill -HUP \$MAINPID'; do
        grep -qxF \"\$k\" '$unit' || { echo \"missing \$k\"; exit 1; }
    done"

# Serve as the unit would: user vitals, working directory /var/lib/vitals, its command line,
# the installed configuration (on a free port instead of 8080, which may be taken here).
# setpriv executes the command itself (runuser would stay as its parent), so $! is the server.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
exec_start="$(sed -n 's/^ExecStart=//p' "$unit")"
(cd /var/lib/vitals && exec setpriv --reuid=vitals --regid=vitals --init-groups -- $exec_start --listen "127.0.0.1:$port") >/tmp/vitals-deb-serve.log 2>&1 &
pid=$!
up=0
for _ in $(seq 1 200); do
    if curl -fs "http://127.0.0.1:$port/monitor" | grep -qx OK; then up=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if [ "$up" = 1 ]; then ok "the installed binary serves /monitor as the vitals user"; else fail "the installed binary serves /monitor as the vitals user"; tail -n 20 /tmp/vitals-deb-serve.log; fi
check "/monitor?details reports every component OK" bash -c "curl -fs 'http://127.0.0.1:$port/monitor?details' | grep -q '^store : OK'"
check "the server runs as vitals" bash -c "[ \"\$(ps -o user= -p $pid)\" = vitals ]"
curl -fs -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$port/api/v1/results" \
    -d '{"results": [{"asset": "deb-test", "check": "import", "status": "ok", "id": "deb-test-1"}]}' >/dev/null
check "a pushed result is stored" bash -c "curl -fs 'http://127.0.0.1:$port/api/v1/assets/deb-test' | grep -q '\"import\"'"
kill -HUP "$pid" 2>/dev/null
for _ in $(seq 1 100); do grep -q 'configuration reloaded' /tmp/vitals-deb-serve.log && break; sleep 0.1; done
check "SIGHUP (ExecReload) reloads and keeps serving" bash -c "curl -fs 'http://127.0.0.1:$port/monitor' | grep -qx OK && grep -q 'configuration reloaded' /tmp/vitals-deb-serve.log"
kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
check "the database is in /var/lib/vitals, owned by vitals" bash -c '[ "$(stat -c %U /var/lib/vitals/vitals.db)" = vitals ]'

# A changed conffile, then removal: data and the changed configuration stay.
echo "# changed by test-deb.sh" >>/etc/vitals/vitals.toml
check "dpkg -r removes the package" dpkg -r vitals
check "the binary is gone" bash -c '! [ -e /usr/bin/vitals ]'
check "removal keeps the data" test -s /var/lib/vitals/vitals.db
check "removal keeps the changed configuration" grep -q "changed by test-deb.sh" /etc/vitals/vitals.toml
check "reinstalling keeps the changed configuration" bash -c "dpkg -i --force-confold '$deb' && grep -q 'changed by test-deb.sh' /etc/vitals/vitals.toml"
(cd /var/lib/vitals && exec setpriv --reuid=vitals --regid=vitals --init-groups -- $exec_start --listen "127.0.0.1:$port") >/tmp/vitals-deb-serve.log 2>&1 &
pid=$!
for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$port/monitor" >/dev/null 2>&1 && break; sleep 0.1; done
check "the reinstalled server has the old data" bash -c "curl -fs 'http://127.0.0.1:$port/api/v1/assets/deb-test' | grep -q '\"import\"'"
kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
check "dpkg --purge removes the configuration but keeps the database" bash -c 'dpkg --purge vitals && ! [ -e /etc/vitals/vitals.toml ] && test -s /var/lib/vitals/vitals.db'
rm -rf /var/lib/vitals
finish
