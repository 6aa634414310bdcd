"""``mailsift dmarc``: DMARC aggregate reports, sent and received.

    mailsift dmarc reports send --now [--day YYYY-MM-DD] [--dns HOST:PORT]
    mailsift dmarc reports send --dry-run --out DIR [--day YYYY-MM-DD] [--no-verify]
    mailsift dmarc reports list [--state sent|failed|pending|claimed|skipped]
    mailsift dmarc ingest FILE|DIR [FILE|DIR ...]
    mailsift dmarc senders [--days 7] [--domain example.com] [--csv]

``send --now`` makes the jobs of the last complete reporting period (or of ``--day``) and sends
every due report at once, as ``mailsift serve`` does on its schedule; a report already sent (by
any node) is not sent again. ``--dry-run`` writes each report's XML into DIR and sends nothing.
``ingest`` reads aggregate reports others sent about our domains: XML, gzip, zip or whole
messages (.eml); exit status 1 when a file could not be read (the others are still stored).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path

from mailsift.config import load_settings
from mailsift.core.errors import InputError
from mailsift.interfaces.cli.args import command_group, store_action
from mailsift.interfaces.cli.storecli import emit, fmt_time, principal

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ds = command_group(sub, "dmarc", __doc__, dest="dcmd",
                       help="DMARC aggregate reports: send, ingest, senders")

    r = ds.add_parser("reports", help="the aggregate reports we send")
    rs = r.add_subparsers(dest="rcmd", metavar="ACTION")
    rs.required = True
    c = store_action(rs, "send", _send, help="send due reports now, or write them (--dry-run)")
    mode = c.add_mutually_exclusive_group(required=True)
    mode.add_argument("--now", action="store_true", help="send the due reports now")
    mode.add_argument("--dry-run", action="store_true", help="write the XML, send nothing")
    c.add_argument("--out", metavar="DIR", type=Path, help="where --dry-run writes")
    c.add_argument("--day", help="the UTC day to report (default: the last complete period)")
    c.add_argument("--dns", metavar="HOST:PORT", help="DNS server for rua verification")
    c.add_argument("--no-verify", action="store_true",
                   help="--dry-run: do not look up destinations")
    c = store_action(rs, "list", _list, help="report jobs, newest period first")
    c.add_argument("--state")
    c.add_argument("--limit", type=int, default=100)

    c = store_action(ds, "ingest", _ingest, help="read aggregate reports (XML, gzip, zip, .eml)")
    c.add_argument("paths", nargs="+", type=Path, metavar="FILE|DIR")

    c = store_action(ds, "senders", _senders,
                     help="who sends as our domains, per the reports received")
    c.add_argument("--days", type=int, default=7)
    c.add_argument("--domain")
    c.add_argument("--csv", action="store_true", help="CSV on standard output")


def _open(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from mailsift.store import Store

    settings = load_settings(getattr(args, "config", None)).settings
    return settings, Store.open(settings.store)


def _period(day: str | None, hours: int) -> tuple[int, int] | None:
    if not day:
        return None
    try:
        d = dt.date.fromisoformat(day)
    except ValueError as exc:
        raise InputError(f"--day {day!r}: use YYYY-MM-DD") from exc
    begin = int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp())
    return begin, begin + 86400


def _send(args: argparse.Namespace) -> int:
    from mailsift.app import build_report_sender

    settings, store = _open(args)
    with store:
        if args.dry_run:
            if args.out is None:
                raise InputError("--dry-run needs --out DIR")
            if not settings.dmarc_reports.email:  # a dry run may go without a From address
                conf = settings.dmarc_reports.model_copy(update={"email": "dry-run@invalid"})
                settings = settings.model_copy(update={"dmarc_reports": conf})
        sender = build_report_sender(settings, store, dns_server=args.dns)
        period = _period(args.day, settings.dmarc_reports.interval_hours)
        if args.dry_run:
            written = sender.dry_run(args.out, period=period, verify=not args.no_verify)
            listed = [{"file": str(p), "domain": r.domain, "records": r.records,
                     "messages": r.messages, "destinations": d, "notes": n}
                    for p, r, d, n in written]
            lines = [f"{p}  {r.messages} message(s), {r.records} record(s) -> "
                     f"{', '.join(d) or 'no verified destination'}"
                     + (f"  ({'; '.join(n)})" if n else "") for p, r, d, n in written]
            emit(args, listed, "\n".join(lines) or "no evaluations in the period")
            return 0
        begin, end, created = sender.schedule(period=period)
        outcomes = asyncio.run(sender.run_due())
        data = {"period": [begin, end], "jobs_created": created,
                "outcomes": [o.to_dict() for o in outcomes]}
        lines = [f"period {fmt_time(begin)} .. {fmt_time(end)}: {created} new job(s)"]
        lines += [f"  {o.domain}: {o.state} {', '.join(o.destinations)} {o.detail}".rstrip()
                  for o in outcomes]
        emit(args, data, "\n".join(lines))
        return 1 if any(o.state in ("failed", "retry") for o in outcomes) else 0


def _list(args: argparse.Namespace) -> int:
    from mailsift.services.dmarc.senders import DmarcService
    from mailsift.store.dmarc import DmarcStore

    _, store = _open(args)
    with store:
        svc = DmarcService(DmarcStore(store.engine, store.clock), store.clock)
        jobs = svc.outgoing(principal(args), state=args.state, limit=args.limit)
    lines = [f"{j.id:>6} {fmt_time(j.period_begin)} {j.policy_domain:<30} {j.state:<8} "
             f"tries={j.attempts} {j.messages} msg -> {','.join(j.sent_to) or '-'} "
             f"{j.last_error}".rstrip() for j in jobs]
    emit(args, [j.to_dict() for j in jobs], "\n".join(lines) or "no report jobs")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from mailsift.services.dmarc.ingest import Ingestor, IngestResult
    from mailsift.store.dmarc import DmarcStore

    settings, store = _open(args)
    total = IngestResult()
    with store:
        ingestor = Ingestor(DmarcStore(store.engine, store.clock), settings.dmarc_reports)
        for path in args.paths:
            if not path.exists():
                total.errors.append(f"{path}: no such file or directory")
                continue
            total.add(ingestor.ingest_path(path))
    text = (f"{len(total.stored)} report(s) stored, {len(total.duplicates)} duplicate(s), "
            f"{len(total.errors)} error(s)")
    for line in total.errors:
        print(f"mailsift: {line}", file=sys.stderr)
    emit(args, total.to_dict(), text)
    return 1 if total.errors else 0


def _senders(args: argparse.Namespace) -> int:
    from mailsift.services.dmarc.senders import DmarcService, sender_verdict
    from mailsift.store.dmarc import DmarcStore

    settings, store = _open(args)
    with store:
        svc = DmarcService(DmarcStore(store.engine, store.clock), store.clock,
                           settings.dmarc_reports.our_domains)
        who = principal(args)
        if args.csv:
            sys.stdout.write(svc.csv(who, days=args.days, domain=args.domain))
            return 0
        found = svc.senders(who, days=args.days, domain=args.domain)
    lines = [f"{s.header_from:<28} {s.source_ip:<40} {s.messages:>8} pass={s.dmarc_pass} "
             f"fail={s.dmarc_fail} spf-unaligned={s.messages - s.spf_aligned} "
             f"dkim-unaligned={s.messages - s.dkim_aligned}  {sender_verdict(s)}"
             for s in found]
    emit(args, [s.to_dict() for s in found], "\n".join(lines) or "no reports in the window")
    return 0
