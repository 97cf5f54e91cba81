#!/usr/bin/env python3
"""The anchor of bench/engine: the same re-integration loop as an operations team would write
it in Python (stdlib only): for every (source, probe patient) fetch the patient from the source
over HTTP, read the catalogue's copy from SQLite, normalise and compare three fields; 16
threads, like the engine's concurrency. Prints comparisons per minute and CPU per comparison.

    anchor.py CATALOGUE URL K SECONDS
"""
import concurrent.futures
import datetime
import json
import resource
import sqlite3
import sys
import threading
import time
import urllib.error
import urllib.request

cat_path, url, k, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
local = threading.local()


def db():
    if not hasattr(local, "db"):
        local.db = sqlite3.connect(f"file:{cat_path}?mode=ro", uri=True)
    return local.db


def norm_date(s):
    for fmt in ("%Y-%m-%d", "%Y%m%d", "%d.%m.%Y"):
        try:
            return datetime.datetime.strptime(s.strip()[:10], fmt).date().isoformat()
        except ValueError:
            pass
    return s


def one(pair):
    source, patient = pair
    try:
        with urllib.request.urlopen(f"{url}/fhir/Patient/{patient}", timeout=10) as r:
            doc = json.loads(r.read())
    except (urllib.error.URLError, OSError):
        return None
    row = db().execute("SELECT family, given, birth_date FROM patients WHERE id = ?", (patient,)).fetchone()
    differ = []
    if doc["name"][0]["family"].strip().lower() != row[0].strip().lower():
        differ.append("family")
    if doc["name"][0]["given"][0].strip() != row[1].strip():
        differ.append("given")
    if norm_date(doc["birthDate"]) != norm_date(row[2]):
        differ.append("birth_date")
    return differ


pairs = []
con = sqlite3.connect(cat_path)
for (sid,) in con.execute("SELECT id FROM sources"):
    for (pid,) in con.execute(
        "SELECT patient_id FROM episodes WHERE source_id = ? ORDER BY patient_id LIMIT ?", (sid, k)
    ):
        pairs.append((sid, pid))
con.close()

pool = concurrent.futures.ThreadPoolExecutor(max_workers=16)
list(pool.map(one, pairs))  # warm-up round
ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
n = 0
while time.monotonic() - t0 < seconds:
    results = list(pool.map(one, pairs))
    n += len(results)
ru1, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - t0
cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
print(f"comparisons {n}")
print(f"per_minute {n / wall * 60:.0f}")
print(f"cpu_us_per_comparison {cpu / n * 1e6:.1f}")
print(f"cpu_share_of_a_core {cpu / wall:.2f}")
