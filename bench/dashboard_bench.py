"""Dashboard benchmark: how long the dashboard's charts take to compute over a busy week.

    .venv/bin/python bench/dashboard_bench.py                     # 50,000 messages in 7 days
    .venv/bin/python bench/dashboard_bench.py --messages 200000 --backends sqlite

Fills a temporary store (SQLite, and PostgreSQL in a temporary schema when reachable) through
``TraceStore.record_many`` with ``--messages`` messages spread evenly over the last 7 days, 5%
of them quarantined by one of 20 rules (each finding among the verdict's reasons), then times
what the dashboard computes for each range: ``stats.mail_flow`` and ``stats.breaker_view``
(the circuit breaker per rule, artifact version and category, issue 24), median of 3 runs.
Prints one JSON object per backend and range.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mailsift.config.rollout import RolloutSettings
from mailsift.core.findings import Finding
from mailsift.core.verdict import Action, Category
from mailsift.interfaces.web import stats
from mailsift.services.access import Principal
from mailsift.store import Recordable, Store
from mailsift.testing.storekit import FakeClock, make_result, pg_unavailable, temp_store_settings

ADMIN = Principal("bench", "admin")
NOW = 1_800_000_000.0
RANGES = {6: 60.0, 24: 300.0, 168: 3600.0}  # as the dashboard's RANGES


def fill(store: Store, n: int) -> None:
    raw = b"Subject: bench\r\n\r\nbody\r\n"
    step = 7 * 86400 / n
    batch: list[Recordable] = []
    for i in range(n):
        held = i % 20 == 0
        rule = Finding(f"BENCH_RULE_{i % 400 // 20}", 7.0, ("x",), "rules", "phish",
                       artifact="rules:bench", version="1")
        result = make_result(f"d{i:08d}", raw, recipients={
            f"user{i % 300}@corp.example": Action.QUARANTINE if held else Action.DELIVER},
            category=Category.PHISH, findings=(rule,) if held else ())
        batch.append(Recordable(result, raw, received_at=NOW - 7 * 86400 + i * step))
        if len(batch) == 1000:
            store.trace.record_many(batch)
            batch = []
    store.trace.record_many(batch)


def timed(fn: object, repeat: int = 3) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def run(backend: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, \
            temp_store_settings(backend, Path(tmp)) as settings:
        store = Store.open(settings, clock=FakeClock(NOW))
        try:
            t0 = time.perf_counter()
            fill(store, n)
            store.analyze()
            print(json.dumps({"backend": backend, "messages": n,
                              "fill_s": round(time.perf_counter() - t0, 1)}), flush=True)
            rollout = RolloutSettings()
            for hours, bucket in RANGES.items():
                since = NOW - hours * 3600
                flow = timed(lambda s=since, b=bucket: stats.mail_flow(
                    ADMIN, store, since=s, until=NOW, bucket_seconds=b))
                breaker = timed(lambda s=since, b=bucket: stats.breaker_view(
                    ADMIN, store, rollout, now=NOW, since=s, bucket_seconds=b))
                view = stats.breaker_view(ADMIN, store, rollout, now=NOW, since=since,
                                          bucket_seconds=bucket)
                print(json.dumps({"backend": backend, "hours": hours, "bucket_s": bucket,
                                  "buckets": len(view.starts),
                                  "mail_flow_ms": round(flow * 1000, 1),
                                  "breaker_view_ms": round(breaker * 1000, 1),
                                  "subjects_shown": len(view.subjects)}), flush=True)
        finally:
            store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        if backend == "postgresql" and (why := pg_unavailable()):
            print(json.dumps({"backend": backend, "skipped": why}))
            continue
        run(backend, args.messages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
