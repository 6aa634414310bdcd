"""DMARC aggregate reporting benchmark: the cost of recording an evaluation in the gateway, and
building one day's reports for 1,000,000 evaluations over 5,000 domains on PostgreSQL.

    .venv/bin/python bench/dmarc_bench.py                      # both parts, full size
    .venv/bin/python bench/dmarc_bench.py --part record --messages 50000
    .venv/bin/python bench/dmarc_bench.py --part build --evaluations 100000 --domains 500

``record``: scan results carrying realistic DMARC evaluations (passes and failures, one to three
DKIM signatures, 5,000 domains) go through ``EvaluationRecorder.observe`` exactly as the gateway
calls it on its event loop (the cost a message pays), then the buffered rows are written with
``flush`` on SQLite and PostgreSQL in batches of 256, as the store's writer thread does (CPU the
node spends per message, off the message's path).

``build``: 1,000,000 evaluations of one UTC day are loaded into a fresh PostgreSQL schema with
COPY (setup, not measured) and analysed; then ``ReportSender`` makes the day's jobs, claims
them in batches and builds every report (one SQL GROUP BY and one last-record query per batch
of 50 domains, XML, gzip), exactly as ``run_due`` does before each report's SMTP transaction.
Nothing is sent. Prints seconds and reports per second.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from mailsift.config.dmarc import DmarcReportSettings
from mailsift.core.auth import AuthResults, AuthStatus, CompAuth, DkimResult, DmarcResult, SpfResult
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Action
from mailsift.services.dmarc.evaluations import EvaluationRecorder
from mailsift.services.dmarc.sending import ReportSender
from mailsift.store import Store
from mailsift.store.dmarc import DmarcStore
from mailsift.testing.storekit import (
    FakeClock,
    make_result,
    pg_unavailable,
    temp_store_settings,
)

DAY0 = 1_799_971_200  # 2027-01-15 00:00 UTC


def results(n: int, domains: int, seed: int = 7) -> list[ScanResult]:
    rng = random.Random(seed)
    base = make_result("bench", b"Subject: x\r\n\r\nx\r\n", recipients={
        "user@rcpt.example": Action.DELIVER})
    out = []
    for i in range(n):
        d = f"d{rng.randrange(domains)}.example"
        passed = rng.random() < 0.85
        ip = f"192.0.{rng.randrange(4)}.{rng.randrange(1, 60)}"
        sigs = tuple(DkimResult(AuthStatus.PASS if passed or k else AuthStatus.FAIL,
                                d if k == 0 else f"esp{k}.example", f"s{rng.randrange(3)}",
                                index=k) for k in range(rng.randrange(1, 4)))
        spf = SpfResult(AuthStatus.PASS if passed else AuthStatus.SOFTFAIL, "mailfrom",
                        d if passed else "bulk.example", client_ip=ip)
        dmarc = DmarcResult(AuthStatus.PASS if passed else AuthStatus.FAIL, d,
                            policy="reject", disposition="none" if passed else "reject",
                            org_domain=d, policy_domain=d, spf_aligned=passed,
                            dkim_aligned=passed, aligned_dkim_domain=d if passed else "",
                            record=f"v=DMARC1; p=reject; rua=mailto:dmarc@{d}")
        auth = AuthResults(spf=spf, dkim=sigs, dmarc=dmarc,
                           compauth=CompAuth(dmarc.result))
        out.append(replace(base, id=f"m{i}", auth=auth))
    return out


def bench_record(n: int, domains: int, backends: list[str]) -> dict[str, Any]:
    msgs = results(n, domains)
    flushes: list[Any] = []
    out: dict[str, Any] = {"messages": n}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            if backend == "postgresql" and (why := pg_unavailable()):
                out[backend] = f"skipped: {why}"
                continue
            with temp_store_settings(backend, Path(tmp) / backend) as settings:
                store = Store.open(settings, clock=FakeClock(DAY0 + 3600))
                try:
                    rec = EvaluationRecorder(DmarcStore(store.engine, store.clock),
                                             flushes.append, clock=lambda: DAY0 + 3600.0)
                    observe_s = []
                    write_s = 0.0
                    for start in range(0, n, 256):  # the writer's batch size
                        t0 = time.perf_counter()
                        for r in msgs[start:start + 256]:
                            rec.observe(r)
                        observe_s.append((time.perf_counter() - t0) / len(
                            msgs[start:start + 256]))
                        t0 = time.perf_counter()
                        rec.flush()
                        write_s += time.perf_counter() - t0
                    assert rec.written == n, (rec.written, rec.lost)
                    out[backend] = {
                        "observe_us_per_msg": round(statistics.median(observe_s) * 1e6, 2),
                        "write_us_per_msg": round(write_s / n * 1e6, 2),
                        "flushes_scheduled": len(flushes),
                    }
                    flushes.clear()
                finally:
                    store.close()
    return out


def _load_pg(store: Store, n: int, domains: int, ips: int, variants: int) -> None:
    """COPY ``n`` evaluations of DAY0 (setup, not timed): each domain's mail comes from
    ``ips`` source addresses with ``variants`` kinds of authentication results (pass, fail,
    signatures and selectors), so a report has up to ``2 * ips * variants`` records."""
    from mailsift.services.dmarc.evaluations import evaluation_row

    sample = [evaluation_row(r, 0.0) for r in results(2000, domains, seed=11)]
    cols = ["evaluated_at", "policy_domain", "header_from", "envelope_from", "envelope_to",
            "source_ip", "result", "dkim_aligned", "spf_aligned", "disposition", "reasons",
            "auth", "record", "discovery"]
    rng = random.Random(3)
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(f"COPY dmarc_evaluations ({', '.join(cols)}) FROM STDIN") as cp:
            for i in range(n):
                dn = i % domains  # every domain gets n / domains evaluations
                row = dict(sample[(dn * variants + rng.randrange(variants)) % len(sample)]
                           or {})
                d = f"d{dn}.example"
                row.update(evaluated_at=DAY0 + rng.randrange(86400), policy_domain=d,
                           source_ip=f"198.51.{dn % 200}.{rng.randrange(ips)}",
                           header_from=d if i % 7 else f"news.{d}",
                           record=f"v=DMARC1; p=reject; rua=mailto:dmarc@{d}")
                cp.write_row([row[c] for c in cols])
        raw.commit()
    finally:
        raw.close()
    store.analyze()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE dmarc_evaluations")


def bench_build(n: int, domains: int, ips: int = 10, variants: int = 4) -> dict[str, Any]:
    if why := pg_unavailable():
        return {"skipped": why}
    with tempfile.TemporaryDirectory() as tmp, \
            temp_store_settings("postgresql", Path(tmp)) as settings:
        clock = FakeClock(DAY0 + 86400 + 60)
        store = Store.open(settings, clock=clock)
        try:
            t0 = time.perf_counter()
            _load_pg(store, n, domains, ips, variants)
            load_s = time.perf_counter() - t0
            sender = ReportSender(DmarcStore(store.engine, store.clock),
                                  DmarcReportSettings(email="dmarc@receiver.example"),
                                  receiver="mx.receiver.example", resolver=None,
                                  relay_factory=lambda: None,  # type: ignore[arg-type,return-value]
                                  clock=clock)
            t0 = time.perf_counter()
            _, _, created = sender.schedule()
            jobs_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            built = records = messages = xml_bytes = gz_bytes = 0
            while jobs := sender.store.claim_many(sender.node, 3600, limit=sender.batch):
                for report in sender.build_jobs(jobs).values():
                    built += 1
                    records += report.records
                    messages += report.messages
                    xml_bytes += len(report.xml)
                    gz_bytes += len(gzip.compress(report.xml, compresslevel=6, mtime=0))
            build_s = time.perf_counter() - t0
        finally:
            store.close()
    assert created == domains and built == domains and messages == n, (created, built, messages)
    return {"evaluations": n, "domains": domains, "ips_per_domain": ips,
            "auth_variants_per_domain": variants, "load_s (setup, COPY)": round(load_s, 1),
            "jobs_s": round(jobs_s, 2), "build_s": round(build_s, 1),
            "total_s": round(jobs_s + build_s, 1),
            "reports_per_s": round(built / build_s, 1), "records": records,
            "xml_mb": round(xml_bytes / 1e6, 1), "gzip_mb": round(gz_bytes / 1e6, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("record", "build", "all"), default="all")
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--evaluations", type=int, default=1_000_000)
    p.add_argument("--domains", type=int, default=5_000)
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--ips-per-domain", type=int, default=10)
    p.add_argument("--variants", type=int, default=4, help="kinds of auth results per domain")
    args = p.parse_args(argv)
    out: dict[str, Any] = {}
    if args.part in ("record", "all"):
        out["record"] = bench_record(args.messages, args.domains, args.backends.split(","))
    if args.part in ("build", "all"):
        out["build"] = bench_build(args.evaluations, args.domains, args.ips_per_domain,
                                   args.variants)
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
