"""The one workload both sides of bench/ingest get: heart rates per (uid, round), deterministic,
so that the anchor's alarm answer over uids 1..500 can be checked against Vitals' answer.

Importable from Python 3.6+ (the anchor's venv) and from the system Python (the load scripts)."""

ROUNDS = 6  # results per uid: at least the alarm's repetition window of 5


def heartrate(uid, k):
    """Heart rate posted for `uid` in round `k`: 55..144, about half of them above 100 (score >= 3)
    and spread so that the 3-of-5 criterion picks a real subset of the uids."""
    x = (uid * 2654435761 + k * 40503) & 0xFFFFFFFF
    x ^= x >> 13
    return 55 + (x * 7) % 90


def score(hr):
    """The test's score rules (the same in the Django model and in Vitals' [[score]])."""
    if hr > 120:
        return 4
    if hr > 100:
        return 3
    if hr > 80:
        return 2
    return 1


def alarm(uids, score_min, repetition, repetition_percent, aggregate_percent=0):
    """The population alarm of health-scoring.md over ROUNDS results per uid, newest first."""
    failing = []
    for u in uids:
        window = [score(heartrate(u, k)) for k in reversed(range(ROUNDS))][:repetition]
        bad = sum(1 for s in window if s >= score_min)
        if 100 * bad / len(window) >= repetition_percent:
            failing.append(u)
    if uids and len(failing) / len(uids) < aggregate_percent / 100:
        return []
    return failing
