"""Digest benchmark: one digest run over many held messages, then a second run.

    .venv/bin/python bench/digest_bench.py                        # 10,000 messages, 2,000 rcpts
    .venv/bin/python bench/digest_bench.py --backends sqlite --messages 50000 --recipients 5000

Per backend (SQLite in a temporary data dir; PostgreSQL in a temporary schema of
postgresql+psycopg://postgres@127.0.0.1:5432/test, skipped with the reason when unreachable):
quarantines ``--messages`` messages (spam, bulk and phish, which digests list, plus some
malware, which they do not) spread over ``--recipients`` recipients through
``TraceStore.record_many`` as the gateway records them, then times ``DigestService.run`` —
collect, claim, render text + HTML with signed links, send over SMTP to an aiosmtpd sink in its
own process, mark sent — exactly as ``mailsift digest send --now`` runs it. A second run must
send nothing; the sink's count of digests per recipient must be exactly one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from mailsift.config.schema import Settings
from mailsift.core.verdict import Category
from mailsift.services.digests import DigestService
from mailsift.store import Recordable, Store
from mailsift.testing.messages import make_message
from mailsift.testing.storekit import (
    FakeClock,
    SmtpSinkProcess,
    make_result,
    pg_unavailable,
    temp_store_settings,
)

T0 = 1_800_000_000.0
_MIX = (Category.SPAM, Category.BULK, Category.PHISH, Category.SPAM, Category.MALWARE)


def _fill(store: Store, messages: int, recipients: int) -> None:
    tpl = make_message(subject="Offer TEMPLATE", message_id="<TEMPLATE@example.org>")
    batch: list[Recordable] = []
    for i in range(messages):
        rcpt = f"user{i % recipients:05d}@corp.example"
        raw = tpl.replace(b"TEMPLATE", str(i).encode())
        cat = _MIX[(i // recipients) % len(_MIX)]  # each recipient: every category
        res = make_result(f"d{i:06d}", raw, recipients=(rcpt,), category=cat,
                          subject=f"Offer {i}", from_addr=f"sender{i % 97}@vendor.example")
        batch.append(Recordable(res, raw, received_at=T0 - 3600 + i * 0.1))
        if len(batch) == 500:
            store.trace.record_many(batch)
            batch = []
    if batch:
        store.trace.record_many(batch)


def run(backend: str, messages: int, recipients: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, \
            temp_store_settings(backend, Path(tmp)) as conf:
        sink = SmtpSinkProcess(Path(tmp) / "sink.jsonl").start()
        try:
            clock = FakeClock(T0)
            store = Store.open(conf, clock=clock)
            started = time.perf_counter()
            _fill(store, messages, recipients)
            fill_s = time.perf_counter() - started
            store.analyze()
            conf = conf.model_copy(update={"release_host": "127.0.0.1",
                                           "release_port": sink.port})
            settings = Settings.model_validate({"store": conf.model_dump()})
            svc = DigestService(store, settings, node="bench")
            first = asyncio.run(svc.run())
            second = asyncio.run(svc.run())
            time.sleep(0.5)
            copies = sink.copies()
            store.close()
        finally:
            sink.stop()
    per_rcpt: dict[str, int] = {}
    for (_, rcpt), n in copies.items():
        per_rcpt[rcpt] = per_rcpt.get(rcpt, 0) + n
    return {
        "backend": backend, "messages": messages, "recipients": recipients,
        "fill_seconds": round(fill_s, 1),
        "digest_run_seconds": round(first.seconds, 2),
        "digests_sent": len(first.sent), "messages_listed": first.items,
        "failed": len(first.failed),
        "second_run_sent": len(second.sent), "second_run_seconds": round(second.seconds, 2),
        "sink_digests": sum(per_rcpt.values()),
        "max_digests_per_recipient": max(per_rcpt.values(), default=0),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--recipients", type=int, default=2_000)
    p.add_argument("--backends", default="sqlite,postgresql")
    args = p.parse_args()
    ok = True
    for backend in args.backends.split(","):
        if backend == "postgresql" and (why := pg_unavailable()):
            print(json.dumps({"backend": backend, "skipped": why}))
            continue
        out = run(backend, args.messages, args.recipients)
        print(json.dumps(out))
        ok = ok and out["second_run_sent"] == 0 and out["max_digests_per_recipient"] == 1
        ok = ok and float(str(out["digest_run_seconds"])) < 60
    print("target (< 60 s, nothing sent twice):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
