"""Anchor of bench/ingest: django-health-monitor 0.2.9 on SQLite, driven in-process by Django's
test Client (no HTTP, no sockets), as its published figure of 333 posts/s was measured.

Run with the anchor venv's Python from a copy of dhm_app/ (makemigrations writes there):
    python dhm_bench.py --app DIR --db FILE --sqlite wal --posts 3000 --uids 500 --alarm-runs 50
--sqlite chooses how the anchor's SQLite commits:
    default  a file with Django's defaults (rollback journal, synchronous=FULL: fsync per commit)
    wal      a file in WAL mode with synchronous=NORMAL: the same durability as Vitals' store
             (survives kill -9, not power loss)
    memory   ":memory:", as Django's test runner sets it up (the published 333 posts/s)
Prints one JSON object on stdout: post rate, alarm query times and the alarm answers."""
import argparse
import json
import math
import os
import sys
import time


def nearest_rank(values, p):
    """Exact percentile, nearest rank: the smallest value that p % of the values do not exceed."""
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--app", required=True, help="copy of bench/ingest/dhm_app")
    ap.add_argument("--db", help="SQLite file (not for --sqlite memory)")
    ap.add_argument("--sqlite", choices=("default", "wal", "memory"), default="wal")
    ap.add_argument("--posts", type=int, default=3000)
    ap.add_argument("--uids", type=int, default=500)
    ap.add_argument("--alarm-runs", type=int, default=50)
    args = ap.parse_args()

    sys.path.insert(0, args.app)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    if args.sqlite == "memory":
        os.environ["DHM_DB"] = ":memory:"
    elif args.db:
        os.environ["DHM_DB"] = args.db
    else:
        sys.exit("anchor: --db FILE is required unless --sqlite memory")
    import django
    from django.core.management import call_command
    from django.db.backends.signals import connection_created

    if args.sqlite == "wal":

        def wal(sender, connection, **kwargs):
            with connection.cursor() as c:
                c.execute("PRAGMA journal_mode=WAL")
                c.execute("PRAGMA synchronous=NORMAL")

        connection_created.connect(wal)

    django.setup()
    call_command("makemigrations", "bodyhealth", verbosity=0)
    call_command("migrate", verbosity=0)

    from django.test import Client

    import workload

    client = Client()
    rounds = -(-args.posts // args.uids)
    plan = [
        (uid, workload.heartrate(uid, k))
        for k in range(rounds)
        for uid in range(1, args.uids + 1)
    ][: args.posts]

    # One throw-away post outside the clock would change the data; the first post's one-off
    # costs (URL resolver, imports) are part of the anchor's rate as published, so all are timed.
    t0 = time.perf_counter()
    for uid, hr in plan:
        r = client.post("/health_test/heart/%d/" % uid, {"heartrate": hr})
        if r.status_code != 200:
            sys.exit("anchor: POST for uid %d answered %d: %s" % (uid, r.status_code, r.content))
    post_s = time.perf_counter() - t0

    # Spot-check that the anchor scored what it was sent.
    uid, hr = plan[-1]
    last = json.loads(client.get("/health/%d/" % uid).content.decode())
    if last["state"]["doctor"]["heart"]["score"] != workload.score(hr):
        sys.exit("anchor: uid %d state %r, expected score %d" % (uid, last, workload.score(hr)))

    def alarm(query):
        t = time.perf_counter()
        r = client.get("/health_alarm/doctor/heart/?" + query)
        dt = time.perf_counter() - t
        if r.status_code != 200:
            sys.exit("anchor: alarm %s answered %d: %s" % (query, r.status_code, r.content))
        return dt, json.loads(r.content.decode())

    out = {
        "sqlite": args.sqlite,
        "posts": len(plan),
        "uids": args.uids,
        "post_seconds": post_s,
        "posts_per_s": len(plan) / post_s,
        "alarms": {},
    }
    for name, query in (
        ("a0", "score=3&aggregate_percent=0&repetition=5&repetition_percent=60"),
        ("a20", "score=3&aggregate_percent=20&repetition=5&repetition_percent=60"),
    ):
        # The first query after posts rebuilds each asset's cached history and saves it (the
        # original writes during a GET); later ones read the cache. Both are reported.
        first, answer = alarm(query)
        times = []
        for _ in range(args.alarm_runs):
            dt, again = alarm(query)
            if again != answer:
                sys.exit("anchor: alarm answer changed between runs")
            times.append(dt)
        out["alarms"][name] = {
            "query": query,
            "first_ms": first * 1e3,
            "p50_ms": nearest_rank(times, 50) * 1e3,
            "p99_ms": nearest_rank(times, 99) * 1e3,
            "runs": len(times),
            "uids": sorted(answer),
        }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
