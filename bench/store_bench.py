"""Store benchmark: trace insert rate, search latency over many trace rows, bulk release rate.

    .venv/bin/python bench/store_bench.py                       # quick: 100k search rows
    .venv/bin/python bench/store_bench.py --search-rows 1000000 # the full 1M-row search
    .venv/bin/python bench/store_bench.py --backends sqlite --release 10000

Runs each part on SQLite (a temporary data dir) and PostgreSQL (a temporary schema in
postgresql+psycopg://postgres@127.0.0.1:5432/test, dropped afterwards; skipped with the reason
when unreachable). Inserts go through ``TraceStore.record_many`` exactly as the gateway calls it
(blobs fsynced, one transaction per batch); the search table is bulk-loaded with plain
multi-row INSERTs to keep setup time reasonable, then queried through ``TraceStore.search``.
The release part quarantines N messages and releases them by query to an aiosmtpd sink running
in its own process, then releases again to show the second run sends nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from mailsift.core.findings import Finding
from mailsift.core.message import Attachment, Url
from mailsift.services.access import Principal
from mailsift.services.store_services import StoreServices
from mailsift.store import Recordable, Store, TraceQuery
from mailsift.store.models import ArtifactVersion, FindingRow, MessageRow, TraceRow
from mailsift.store.search import MessageUrl
from mailsift.testing.messages import make_message
from mailsift.testing.storekit import (
    FakeClock,
    SmtpSinkProcess,
    make_result,
    pg_unavailable,
    temp_store_settings,
)

ADMIN = Principal("bench", "admin")
T0 = 1_800_000_000.0


def _raw_template() -> bytes:
    return make_message(subject="Quarterly invoice", message_id="<TEMPLATE-ID@example.org>",
                        html="<p>Please find the invoice attached.</p>")


def _links(i: int) -> tuple[list[Url], list[Attachment]]:
    """What a typical message carries for the search tables: five links, one attachment."""
    urls = [Url(f"https://www{k}.site{(i + k) % 997}.example/p", "https",
                f"www{k}.site{(i + k) % 997}.example", f"site{(i + k) % 997}.example")
            for k in range(5)]
    att = Attachment("invoice.pdf", "application/pdf", "application/pdf", 1000,
                     hashlib.sha256(f"att{i % 5000}".encode()).hexdigest())
    return urls, [att]


def _items(n: int, start: int, quarantine_share: float,
           links: bool = False) -> list[Recordable]:
    tpl = _raw_template()
    rule = Finding("RULE_INVOICE_LURE", 6.0, ("invoice",), "rules", "phish",
                   artifact="rules/default", version="42")
    out = []
    rnd = random.Random(start)
    for i in range(start, start + n):
        raw = tpl.replace(b"TEMPLATE-ID", f"b{i}".encode())
        action_q = rnd.random() < quarantine_share
        from mailsift.core.verdict import Action

        rcpts = {f"user{i % 500}@corp.example": Action.QUARANTINE if action_q
                 else Action.DELIVER}
        urls, atts = _links(i) if links else ([], [])
        out.append(Recordable(make_result(f"b{i:08d}", raw, recipients=rcpts,
                                          findings=[rule] if action_q else [],
                                          versions={"rules/default": "42"}, urls=urls,
                                          attachments=atts), raw,
                              received_at=T0 + i * 0.01))
    return out


def bench_insert(store: Store, n: int, batch: int) -> dict[str, Any]:
    """The insert rate of messages without links, then of as many with five links and one
    attachment each (the rows the link and attachment look-ups read, issue 24)."""
    out: dict[str, Any] = {"messages": n, "batch": batch}
    for label, start, links in (("", 0, False), ("links_", 50_000_000, True)):
        items = _items(n, start, 0.2, links)
        started = time.perf_counter()
        for k in range(0, n, batch):
            store.trace.record_many(items[k:k + batch])
        elapsed = time.perf_counter() - started
        out[f"{label}seconds"] = round(elapsed, 2)
        out[f"{label}msg_per_s"] = round(n / elapsed)
    return out


def _load_search_rows(store: Store, rows: int, chunk: int = 20_000) -> float:
    """Bulk-load ``rows`` trace rows (one recipient each) with findings and versions."""
    rnd = random.Random(7)
    codes = [f"RULE_{k:03d}" for k in range(200)]
    cats = ["clean"] * 6 + ["spam", "bulk", "phish", "spam_high"]
    started = time.perf_counter()
    for base in range(0, rows, chunk):
        msgs, traces, finds, vers, urls = [], [], [], [], []
        for i in range(base, min(rows, base + chunk)):
            mid = f"s{i:09d}"
            ts = T0 + i * 0.5
            cat = rnd.choice(cats)
            action = "deliver" if cat == "clean" else ("quarantine" if cat != "bulk" else "junk")
            sender = f"news{rnd.randrange(20000)}@sender{rnd.randrange(3000)}.example"
            rcpt = f"user{rnd.randrange(50000)}@corp.example"
            subject = f"Message {i} about topic {rnd.randrange(10000)}"
            msgs.append({"id": mid, "received_at": ts, "mail_from": sender, "rcpt_to": "[]",
                         "client_ip": f"192.0.{i % 200}.{i % 250}", "helo": "mx",
                         "from_header": sender, "msgid_key": f"m{i}@mail.example",
                         "to_header": rcpt, "subject": subject, "message_id_header": "",
                         "date_header": "", "size": 4000, "blob_sha256": None,
                         "category": cat, "action": action, "score": 1.0,
                         "decided_by": "2-detection", "explanation": "", "auth_json": "null",
                         "verdict_json": "{}", "raw_deleted_at": None})
            traces.append({"message_pk": mid, "recipient": rcpt, "received_at": ts,
                           "mail_from": sender, "from_addr": sender,
                           "from_text": f"Sender {i % 20000} <{sender}>", "subject": subject,
                           "category": cat, "action": action, "score": 1.0,
                           "decided_by": "2-detection", "policy": "default",
                           "verdict_json": "{}",
                           "status": "quarantined" if action == "quarantine" else "accepted",
                           "updated_at": ts})
            if cat != "clean":
                code = rnd.choice(codes)
                finds.append({"message_pk": mid, "code": code, "weight": 5.0,
                              "family": "spam", "detector": "rules",
                              "artifact": "rules/default", "version": str(i // 100_000),
                              "state": "active", "description": "", "evidence_json": "[]"})
            vers.append({"message_pk": mid, "artifact": "rules/default",
                         "version": str(i // 100_000)})
            urls.append({"message_pk": mid, "domain": f"site{i % 30000}.example"})
        with store.engine.begin() as conn:
            conn.execute(insert(MessageRow), msgs)
            conn.execute(insert(TraceRow), traces)
            if finds:
                conn.execute(insert(FindingRow), finds)
            conn.execute(insert(ArtifactVersion), vers)
            conn.execute(insert(MessageUrl), urls)
        print(f"  loaded {min(rows, base + chunk):,} rows", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    store.analyze()
    return time.perf_counter() - started


def _timed(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[min(len(times) - 1, math.ceil(len(times) * 0.95) - 1)], 2)}


def bench_search(store: Store, rows: int, repeat: int) -> dict[str, Any]:
    load = _load_search_rows(store, rows)
    end = T0 + rows * 0.5
    day = 86400.0
    trace = store.trace
    queries: dict[str, TraceQuery] = {
        "recipient": TraceQuery(recipient="user123@corp.example"),
        "sender": TraceQuery(sender="news77@sender5.example"),
        "sender domain": TraceQuery(sender="@sender5.example"),
        "finding code": TraceQuery(finding="RULE_007"),
        "rule+version": TraceQuery(finding="RULE_007", version="0"),
        # the artifact version that was live during that day (versions change every 100k rows)
        "artifact version+window": TraceQuery(
            artifact="rules/default", version=str(int((end - 1.5 * day - T0) / 0.5) // 100_000),
            since=end - 2 * day, until=end - day),
        "quarantine last day": TraceQuery(action="quarantine", since=end - day),
        "category phish": TraceQuery(category="phish"),
        "subject substring": TraceQuery(subject="topic 4242"),
        # issue 24: parts of addresses and names, exact look-ups
        "sender part (name)": TraceQuery(sender="sender 777 <"),
        "recipient local part": TraceQuery(recipient="user123@"),
        "message-id": TraceQuery(message_id=f"<m{rows // 2}@mail.example>"),
        "client ip": TraceQuery(client_ip="192.0.7.7"),
        "reference prefix": TraceQuery(ref=f"s{rows // 2:09d}"[:8]),
        "link domain": TraceQuery(url_domain="site4242.example"),
        "sender part + last day": TraceQuery(sender="news77", since=end - day),
    }
    out: dict[str, Any] = {"rows": rows, "load_seconds": round(load, 1)}
    for name, q in queries.items():
        out[name] = _timed(lambda q=q: trace.search(q, limit=50), repeat)

    def deep() -> None:
        cursor = None
        for _ in range(20):
            cursor = trace.search(TraceQuery(), cursor=cursor, limit=50).next_cursor

    out["20 pages (keyset)"] = _timed(deep, max(1, repeat // 4))

    def deep_sorted() -> None:
        cursor = None
        for _ in range(20):
            cursor = trace.search(TraceQuery(action="quarantine"), cursor=cursor, limit=50,
                                  sort="subject", descending=False).next_cursor

    out["20 pages by subject"] = _timed(deep_sorted, max(1, repeat // 4))
    out["count rule+version"] = _timed(
        lambda: trace.count(TraceQuery(finding="RULE_007", version="0")), max(1, repeat // 4))
    return out


def bench_release(store: Store, n: int, tmp: Path, connections: int) -> dict[str, Any]:
    sink = SmtpSinkProcess(tmp / "sink.jsonl").start()
    try:
        settings = store.settings.model_copy(update={
            "release_port": sink.port, "release_connections": connections})
        store.settings = settings
        items = _items(n, 10_000_000, 1.0)
        for k in range(0, n, 1000):
            store.trace.record_many(items[k:k + 1000])
        clock = store.clock
        if isinstance(clock, FakeClock):
            clock.advance(T0 + n)
        svc = StoreServices.build(store)
        q = TraceQuery(finding="RULE_INVOICE_LURE", version="42")
        preview = svc.bulk.preview(ADMIN, q)
        t = time.perf_counter()
        job = svc.bulk.start(ADMIN, q)
        done = asyncio.run(svc.bulk.run(ADMIN, job.id))
        first = time.perf_counter() - t
        t = time.perf_counter()
        again = svc.bulk.start(ADMIN, q)
        redo = asyncio.run(svc.bulk.run(ADMIN, again.id))
        second = time.perf_counter() - t
        copies = sink.copies()
        return {"messages": n, "dry_run_count": preview.recipients, "sent": done.sent,
                "seconds": round(first, 2), "msg_per_s": round(done.sent / first),
                "connections": connections, "second_run_sent": redo.sent,
                "second_run_seconds": round(second, 2),
                "duplicates_at_sink": sum(c - 1 for c in copies.values()),
                "received_at_sink": sum(copies.values())}
    finally:
        sink.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--insert", type=int, default=20_000, help="messages for the insert rate")
    ap.add_argument("--batch", type=int, default=200, help="messages per insert transaction")
    ap.add_argument("--search-rows", type=int, default=100_000,
                    help="trace rows for the search part (the issue asks 1000000)")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--release", type=int, default=10_000, help="messages to bulk release")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--skip", action="append", default=[],
                    choices=("insert", "search", "release"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results: dict[str, Any] = {}
    for backend in args.backends.split(","):
        if backend == "postgresql" and (why := pg_unavailable()):
            print(f"skipping PostgreSQL: {why}", file=sys.stderr)
            continue
        res: dict[str, Any] = {}
        for part in ("insert", "search", "release"):
            if part in args.skip:
                continue
            tmp = Path(tempfile.mkdtemp(prefix=f"mailsift-bench-{backend}-"))
            with temp_store_settings(backend, tmp) as settings:
                store = Store.open(settings, clock=FakeClock(T0))
                try:
                    print(f"{backend}: {part} ...", file=sys.stderr)
                    if part == "insert":
                        res[part] = bench_insert(store, args.insert, args.batch)
                    elif part == "search":
                        res[part] = bench_search(store, args.search_rows, args.repeat)
                    else:
                        res[part] = bench_release(store, args.release, tmp, args.connections)
                finally:
                    store.close()
        results[backend] = res
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for backend, res in results.items():
        print(f"== {backend}")
        if "insert" in res:
            r = res["insert"]
            print(f"trace insert: {r['msg_per_s']:,} msg/s ({r['messages']:,} messages, "
                  f"{r['batch']} per transaction, blobs fsynced); with 5 links and one "
                  f"attachment each: {r['links_msg_per_s']:,} msg/s")
        if "search" in res:
            r = res["search"]
            print(f"search over {r['rows']:,} trace rows (loaded in {r['load_seconds']} s), "
                  "first page of 50:")
            for k, v in r.items():
                if isinstance(v, dict):
                    print(f"  {k:28} p50 {v['p50_ms']:>8} ms   p95 {v['p95_ms']:>8} ms")
        if "release" in res:
            r = res["release"]
            print(f"bulk release: {r['msg_per_s']:,} msg/s ({r['sent']:,} sent in "
                  f"{r['seconds']} s over {r['connections']} SMTP connections); second run "
                  f"sent {r['second_run_sent']} in {r['second_run_seconds']} s; duplicates at "
                  f"the sink: {r['duplicates_at_sink']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
