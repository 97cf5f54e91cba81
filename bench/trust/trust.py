#!/usr/bin/env python3
"""Issue 11's hostile-network figures against a running release build (stdlib only).

1. Unauthenticated floods: N POSTs of 60 KB each, half to an unknown route and half to
   /api/v1/results with a wrong token; the database's growth (file + WAL) and the audit rows
   they left (read from the SQLite file), beside the figure of the build before the fix
   (600 such requests grew the database by 40 MB).
2. Half-sent connections: HOLD sockets that send part of a request line and stop; while they
   are held, /monitor, an authenticated push and the overview are timed.

Usage: trust.py BASE_URL DATA_DIR ADMIN_TOKEN [N] [HOLD]
"""
import http.client
import json
import os
import socket
import sqlite3
import statistics
import sys
import threading
import time
import urllib.parse

base, data_dir, token = sys.argv[1], sys.argv[2], sys.argv[3]
N = int(sys.argv[4]) if len(sys.argv) > 4 else 10000
HOLD = int(sys.argv[5]) if len(sys.argv) > 5 else 2000
u = urllib.parse.urlparse(base)
host, port = u.hostname, u.port
BODY = b"x" * (60 * 1024)


def db_bytes():
    total = 0
    for suffix in ("", "-wal", "-shm"):
        p = os.path.join(data_dir, "vitals.db" + suffix)
        if os.path.exists(p):
            total += os.path.getsize(p)
    return total


def audit_rows():
    con = sqlite3.connect(f"file:{os.path.join(data_dir, 'vitals.db')}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM audit").fetchone()[0]
    finally:
        con.close()


def request(method, path, body=None, headers=None, timeout=30):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        r.read()
        return r.status
    except (OSError, http.client.HTTPException) as e:
        return type(e).__name__
    finally:
        c.close()


def flood():
    statuses = {}
    lock = threading.Lock()
    counter = iter(range(N))

    def worker():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            if i % 2:
                s = request("POST", "/api/v1/nope", BODY, {"Content-Type": "application/json"})
            else:
                s = request(
                    "POST",
                    "/api/v1/results",
                    BODY,
                    {"Content-Type": "application/json", "Authorization": "Bearer wrong-token-0123456789"},
                )
            with lock:
                statuses[s] = statuses.get(s, 0) + 1

    before, audit_before = db_bytes(), audit_rows()
    t0 = time.time()
    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.time() - t0
    time.sleep(2)
    after, audit_after = db_bytes(), audit_rows()
    print(f"flood: {N} unauthenticated 60 KB POSTs in {took:.1f} s; answers {dict(sorted(statuses.items(), key=str))}")
    print(f"flood: database {before} -> {after} bytes (growth {after - before} bytes); audit rows {audit_before} -> {audit_after}")
    print(f"flood: before the fix, 600 such requests grew the database by 40 MB (~{40e6 / 600 * N / 1e6:.0f} MB for {N})")


def hold():
    socks = []
    refused = 0
    for i in range(HOLD):
        try:
            # Spread over 127.0.0.10.. (200 per address, under the per-address cap of 256), as
            # many clients would be; the timed requests below come from 127.0.0.1.
            src = f"127.0.0.{10 + i // 200}"
            s = socket.create_connection((host, port), timeout=5, source_address=(src, 0))
            s.sendall(b"GET /monitor HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            socks.append(s)
        except OSError:
            refused += 1
    print(f"hold: {len(socks)} half-sent connections open ({refused} could not connect)")
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    timings = {"monitor": [], "push": [], "overview": []}
    failures = {}
    for i in range(50):
        for name, (method, path, body, headers) in {
            "monitor": ("GET", "/monitor", None, {}),
            "push": (
                "POST",
                "/api/v1/results",
                json.dumps({"results": [{"asset": "bench", "check": "push", "status": "ok", "id": f"trust-{i}"}]}),
                auth,
            ),
            "overview": ("GET", "/api/v1/assets", None, auth),
        }.items():
            t0 = time.time()
            s = request(method, path, body, headers, timeout=10)
            timings[name].append((time.time() - t0) * 1000)
            if s != 200:
                failures[(name, s)] = failures.get((name, s), 0) + 1
    for name, ts in timings.items():
        ts.sort()
        print(f"hold: {name:8s} while held: p50 {statistics.median(ts):.1f} ms, max {ts[-1]:.1f} ms")
    print(f"hold: answers other than 200: {failures or 'none'}")
    for s in socks:
        s.close()


# Held connections first: the flood gets its source address (127.0.0.1) throttled for a minute,
# which would refuse the timed authenticated requests.
hold()
flood()
