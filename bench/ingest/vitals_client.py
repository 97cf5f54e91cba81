"""Vitals side of bench/ingest that wrk cannot do: load the P4 population through the batch API,
time the population alarm over one keep-alive connection, read /api/v1/status.

    python3 vitals_client.py status  --url http://127.0.0.1:PORT
    python3 vitals_client.py load    --url … --uids 10000
    python3 vitals_client.py alarm   --url … --uids 10000 --runs 2000 --data-dir DIR --pid PID

Each prints one JSON object. Times are measured by the client with time.perf_counter around
request + full response read over a kept-alive http.client connection, so they include the
client's own overhead (Python building the request and parsing the headers). With --pid, the
server's CPU time per query (utime+stime from /proc) is reported too: it does not depend on how
busy the shared cores are with other work, the latency does."""
import argparse
import http.client
import json
import math
import os
import sys
import time
import urllib.parse

import workload


def nearest_rank(values, p):
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


class Conn:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    def call(self, method, path, body=None, ctype="application/json"):
        headers = {"Content-Type": ctype} if body is not None else {}
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            sys.exit("%s %s answered %d: %s" % (method, path, r.status, data[:300]))
        return data


def status(args):
    doc = json.loads(Conn(args.url).call("GET", "/api/v1/status"))
    json.dump(doc["pipeline"], sys.stdout)
    print()


def load(args):
    """ROUNDS results per uid, round k older than round k+1, so the newest-first window is
    well defined; one batch per round and slice of 5,000 uids."""
    c = Conn(args.url)
    now = int(time.time() * 1000)
    sent = 0
    t0 = time.perf_counter()
    for k in range(workload.ROUNDS):
        t = now - (workload.ROUNDS - k) * 1000
        for lo in range(1, args.uids + 1, 5000):
            results = [
                {
                    "asset": str(u),
                    "check": "heart",
                    "values": {"heartrate": workload.heartrate(u, k)},
                    "time": t,
                }
                for u in range(lo, min(lo + 5000, args.uids + 1))
            ]
            doc = json.loads(c.call("POST", "/api/v1/results", json.dumps({"results": results})))
            if doc.get("accepted") != len(results):
                sys.exit("load: accepted %r of %d" % (doc, len(results)))
            sent += len(results)
    json.dump({"results": sent, "seconds": time.perf_counter() - t0}, sys.stdout)
    print()


def files_state(d):
    """(name, size, mtime_ns) of every file of the data dir: equal before and after = no write."""
    out = []
    for name in sorted(os.listdir(d)):
        st = os.stat(os.path.join(d, name))
        out.append((name, st.st_size, st.st_mtime_ns))
    return out


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def alarm(args):
    c = Conn(args.url)
    uids = list(range(1, args.uids + 1))
    out = {}
    before = files_state(args.data_dir) if args.data_dir else None
    for name, agg in (("a0", 0), ("a20", 20)):
        path = (
            "/health_alarm/doctor/heart/?score=3&aggregate_percent=%d&repetition=5"
            "&repetition_percent=60" % agg
        )
        answer = json.loads(c.call("GET", path))
        expected = workload.alarm(uids, 3, 5, 60, agg)
        if sorted(answer) != expected:
            sys.exit("alarm %s: %d uids, expected %d" % (path, len(answer), len(expected)))
        for _ in range(20):  # warm the connection and the server's caches
            c.call("GET", path)
        times = []
        cpu0 = cpu_seconds(args.pid) if args.pid else None
        for _ in range(args.runs):
            t = time.perf_counter()
            c.call("GET", path)
            times.append(time.perf_counter() - t)
        cpu_ms = (cpu_seconds(args.pid) - cpu0) * 1e3 / args.runs if args.pid else None
        out[name] = {
            "path": path,
            "failing": len(answer),
            "runs": len(times),
            "p50_ms": nearest_rank(times, 50) * 1e3,
            "p99_ms": nearest_rank(times, 99) * 1e3,
            "max_ms": max(times) * 1e3,
            "server_cpu_ms": cpu_ms,
            "uids_upto_500": [u for u in answer if u <= 500],
        }
    # Answers are reused while the state stays the same; this variant asks a different query
    # every time (aggregate_percent -1, -2, ...: at or below 0 always alarms, so the answer is
    # a0's) and more distinct ones than the server keeps, so every answer is computed anew.
    expected = workload.alarm(uids, 3, 5, 60, 0)
    times = []
    cpu0 = cpu_seconds(args.pid) if args.pid else None
    for i in range(args.runs):
        path = (
            "/health_alarm/doctor/heart/?score=3&aggregate_percent=%d&repetition=5"
            "&repetition_percent=60" % -(i % 1000 + 1)
        )
        t = time.perf_counter()
        body = c.call("GET", path)
        times.append(time.perf_counter() - t)
        if i % 500 == 0 and sorted(json.loads(body)) != expected:
            sys.exit("alarm %s: wrong answer" % path)
    cpu_ms = (cpu_seconds(args.pid) - cpu0) * 1e3 / args.runs if args.pid else None
    out["fresh"] = {
        "runs": len(times),
        "p50_ms": nearest_rank(times, 50) * 1e3,
        "p99_ms": nearest_rank(times, 99) * 1e3,
        "max_ms": max(times) * 1e3,
        "server_cpu_ms": cpu_ms,
    }
    if before is not None:
        out["data_files_unchanged"] = before == files_state(args.data_dir)
    json.dump(out, sys.stdout)
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=("status", "load", "alarm"))
    ap.add_argument("--url", required=True)
    ap.add_argument("--uids", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--data-dir")
    ap.add_argument("--pid", type=int, help="server pid: report its CPU time per query")
    args = ap.parse_args()
    {"status": status, "load": load, "alarm": alarm}[args.cmd](args)


if __name__ == "__main__":
    main()
