#!/usr/bin/env python3
"""Baseline for benchmark P5: a plain Python SLA-log parser (one regular expression per line)
with exact nearest-rank percentiles, as someone would write it without Vitals.

It follows the same rules as `vitals sla` (see crates/vitals-sla/src/lib.rs): operation name is
LogPoint for service calls (non-<empty> SOAPOperation) and LogPoint:LogPointUniqId for other
calls whose uniq id differs; errors are Result != OK; DB time of a service operation is the sum
of the non-service durations sharing a MessageId with its calls (each id once per operation).

Usage:
  sla_baseline.py FILE...              print the report as JSON
  sla_baseline.py compare A.json B.json  exit 1 unless both reports agree (ops, counts, errors,
                                       p50/p95/p98/p99/max, total, db share)
"""
import json
import math
import re
import sys
from collections import defaultdict
from decimal import Decimal

# The platform's layout, field by field (no backtracking over the whole line).
LINE = re.compile(
    r'LogPoint="([^"]*)" LogPointUniqId="([^"]*)" StartTime="[^"]*" EndTime="[^"]*" '
    r'Duration="([0-9.]+) ?([a-zµ]+)" MessageId="([^"]*)" RequestSize=\S* ReplySize=\S* '
    r'Result=(.*?) ClientIP="[^"]*" SOAPOperation="([^"]*)"'
)
UNIT_US = {
    "us": 1, "microseconds": 1, "µs": 1,
    "ms": 1000, "milliseconds": 1000,
    "s": 1000000, "seconds": 1000000,
}
PERCENTILES = (50, 95, 98, 99)


def nearest_rank(sorted_values, p):
    # Smallest value with at least p % of the values <= it: rank ceil(p * n / 100), in integers.
    n = len(sorted_values)
    rank = max(1, -(-p * n // 100))
    return sorted_values[rank - 1]


def analyse(paths):
    durations = defaultdict(list)
    errors = defaultdict(int)
    service = set()
    msg_db = defaultdict(int)
    msg_ops = defaultdict(set)
    lines = malformed = 0
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                lines += 1
                m = LINE.search(line)
                if m is None or m[4] not in UNIT_US:
                    if line.strip():
                        malformed += 1
                    continue
                lp, uid, num, unit, msg, res, soap = m.groups()
                if "." in num:
                    # Half up on the exact decimal, as Vitals rounds.
                    us = int(Decimal(num) * UNIT_US[unit] + Decimal("0.5"))
                else:
                    us = int(num) * UNIT_US[unit]
                is_service = soap not in ("", "<empty>")
                if is_service or uid in ("", "<empty>", lp):
                    name = lp
                else:
                    name = lp + ":" + uid
                durations[name].append(us)
                if res.strip().upper() != "OK":
                    errors[name] += 1
                if msg in ("", "<empty>"):
                    continue
                if is_service:
                    service.add(name)
                    msg_ops[msg].add(name)
                else:
                    msg_db[msg] += us
    db = defaultdict(int)
    for msg, ops in msg_ops.items():
        for name in ops:
            db[name] += msg_db.get(msg, 0)
    operations = []
    for name, values in durations.items():
        values.sort()
        total = sum(values)
        op = {
            "operation": name,
            "count": len(values),
            "errors": errors[name],
            "max_us": values[-1],
            "total_us": total,
            "db_time_share": (db[name] / total if total else 0.0) if name in service else None,
        }
        for p in PERCENTILES:
            op[f"p{p}_us"] = nearest_rank(values, p)
        operations.append(op)
    operations.sort(key=lambda o: (o["db_time_share"] is None, o["operation"]))
    return {"files": paths, "lines": lines, "malformed": malformed, "operations": operations}


def compare(a_path, b_path):
    with open(a_path) as f:
        a = json.load(f)
    with open(b_path) as f:
        b = json.load(f)
    keys = ["count", "errors", "p50_us", "p95_us", "p98_us", "p99_us", "max_us", "total_us"]
    problems = []
    if a["lines"] != b["lines"]:
        problems.append(f"lines: {a['lines']} != {b['lines']}")
    if a["malformed"] != b["malformed"]:
        problems.append(f"malformed: {a['malformed']} != {b['malformed']}")
    ops_a = {o["operation"]: o for o in a["operations"]}
    ops_b = {o["operation"]: o for o in b["operations"]}
    if set(ops_a) != set(ops_b):
        problems.append(f"operations differ: {sorted(set(ops_a) ^ set(ops_b))}")
    for name in sorted(set(ops_a) & set(ops_b)):
        oa, ob = ops_a[name], ops_b[name]
        for k in keys:
            if oa[k] != ob[k]:
                problems.append(f"{name} {k}: {oa[k]} != {ob[k]}")
        sa, sb = oa.get("db_time_share"), ob.get("db_time_share")
        if (sa is None) != (sb is None) or (sa is not None and not math.isclose(sa, sb, rel_tol=1e-9)):
            problems.append(f"{name} db_time_share: {sa} != {sb}")
    for p in problems:
        print("MISMATCH", p, file=sys.stderr)
    print(f"compared {len(ops_a)} operations x {len(keys) + 1} figures: "
          f"{'all equal' if not problems else str(len(problems)) + ' differ'}")
    return 1 if problems else 0


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "compare":
        if len(sys.argv) != 4:
            sys.exit(__doc__)
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    json.dump(analyse(sys.argv[1:]), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
