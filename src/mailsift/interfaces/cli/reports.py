"""``mailsift reports``: what users reported as phishing, spam or not junk, and its triage.

    mailsift reports list [--state new] [--label ham] [--since -7d] [--limit N] [--cursor TOKEN]
    mailsift reports show ID
    mailsift reports triage ID --confirm|--reject [--note TEXT] [--release]
                             [--list-entry sender|domain [--expires 30d]]
    mailsift reports export --label ham|phish|spam [--state confirmed|new|rejected|any]
                            [--since -30d] --out FILE.mbox

``export`` writes the originals of the reported messages as an mbox: confirmed not-junk reports
are known-good mail (``[rollout] known_good = ["FILE.mbox"]``), confirmed phish a labelled corpus
(``mailsift rollout check NAME --corpus phish:FILE.mbox``). Only confirmed reports by default: a
user's click is a claim until someone triaged it. Messages whose original is gone (retention, or
``keep_raw = "quarantine"`` for delivered mail) are skipped and counted, not an error.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from mailsift.core.errors import InputError
from mailsift.interfaces.cli.args import command_group, store_action
from mailsift.interfaces.cli.storecli import (
    emit,
    fmt_time,
    open_services,
    parse_time,
    principal,
)
from mailsift.services.lists import parse_duration
from mailsift.services.store_services import StoreServices
from mailsift.store import ReportInfo
from mailsift.store.reports import LABELS, REPORT_STATES

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rs = command_group(sub, "reports", __doc__, dest="rcmd",
                       help="user reports (phish, spam, not junk): list, triage, export")

    c = store_action(rs, "list", _list, help="reports, newest first")
    c.add_argument("--state", choices=REPORT_STATES)
    c.add_argument("--label", choices=LABELS)
    c.add_argument("--since", help="reported from this time: ISO 8601, epoch or -7d")
    c.add_argument("--limit", type=int, default=50)
    c.add_argument("--cursor")

    c = store_action(rs, "show", _show, help="one report")
    c.add_argument("id", type=int)

    c = store_action(rs, "triage", _triage,
                     help="confirm or reject a report (optionally release, list)")
    c.add_argument("id", type=int)
    how = c.add_mutually_exclusive_group(required=True)
    how.add_argument("--confirm", dest="state", action="store_const", const="confirmed")
    how.add_argument("--reject", dest="state", action="store_const", const="rejected")
    c.add_argument("--note", default="")
    c.add_argument("--release", action="store_true",
                   help="not junk: release the quarantined copy (exactly once)")
    c.add_argument("--list-entry", choices=("sender", "domain"),
                   help="allow (not junk) or block (phish, spam) the sender or its domain")
    c.add_argument("--expires", help="expiry of the list entry, e.g. 30d (default: never)")

    c = store_action(rs, "export", _export,
                     help="write the reported messages' originals as an mbox")
    c.add_argument("--label", choices=LABELS, required=True)
    c.add_argument("--state", choices=(*REPORT_STATES, "any"), default="confirmed")
    c.add_argument("--since", help="reported from this time: ISO 8601, epoch or -30d")
    c.add_argument("--out", "-o", required=True, metavar="FILE.mbox")


def _with(args: argparse.Namespace, fn: object) -> int:
    svc = open_services(args)
    try:
        return int(fn(svc, args))  # type: ignore[operator]
    finally:
        svc.close()


def _line(r: ReportInfo) -> str:
    who = r.reporter + (f" ({r.mailbox})" if r.mailbox and r.mailbox != r.reporter else "")
    triage = f" by {r.triaged_by}" if r.triaged_by else ""
    return (f"#{r.id} {r.state:9}{triage} {fmt_time(r.created_at)} {r.label:5} "
            f"{r.category}/{r.action} {r.message} {r.subject[:50]!r} from {r.sender or '-'}; "
            f"reported by {who}")


def _list(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        page = svc.reports.list(principal(a), state=a.state, label=a.label,
                                since=parse_time(a.since), cursor=a.cursor, limit=a.limit)
        text = "\n".join(_line(r) for r in page.items) or "no reports"
        if page.next_cursor:
            text += f"\nmore: --cursor {page.next_cursor}"
        emit(a, page.to_dict(), text)
        return 0
    return _with(args, go)


def _show(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        r = svc.reports.get(principal(a), a.id)
        lines = [
            _line(r),
            f"  message:  {r.message} (received {fmt_time(r.received_at)})",
            f"  verdict:  {r.category}/{r.action}"
            + (f" by {', '.join(r.reasons)}" if r.reasons else ""),
            f"  comment:  {r.comment or '-'}",
            f"  triage:   {r.state}" + (f" by {r.triaged_by} at {fmt_time(r.triaged_at)}: "
                                        f"{r.note}" if r.triaged_by else ""),
        ]
        emit(a, r.to_dict(), "\n".join(lines))
        return 0
    return _with(args, go)


def _triage(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        expires = time.time() + parse_duration(a.expires) if a.expires else None
        if expires is not None and not a.list_entry:
            raise InputError("--expires goes with --list-entry")
        result = asyncio.run(svc.reports.triage(principal(a), a.id, a.state, note=a.note,
                                                release=a.release, list_entry=a.list_entry,
                                                expires_at=expires))
        lines = [f"report #{a.id}: {result.previous} -> {result.report.state}"]
        bad = False
        if result.release is not None:
            rep = result.release
            lines.append(f"  released to {', '.join(rep.sent) or 'nobody'}"
                         + (f"; already released: {', '.join(rep.already)}" if rep.already
                            else ""))
            lines += [f"  not released {r}: {why}" for r, why in rep.failed.items()]
            lines += [f"  uncertain {r}" for r in rep.uncertain]
            bad = bool(rep.failed or rep.uncertain)
        if result.entry is not None:
            e = result.entry
            lines.append(f"  {e.action} {e.kind} {e.value}"
                         + (" (already listed)" if result.entry_existed else " added"))
        emit(a, result.to_dict(), "\n".join(lines))
        return 1 if bad else 0
    return _with(args, go)


def _export(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        out = Path(a.out)
        tmp = out.with_name(out.name + ".part")
        state = None if a.state == "any" else a.state
        try:
            with tmp.open("wb") as fh:
                summary = svc.reports.export(principal(a), fh, label=a.label, state=state,
                                             since=parse_time(a.since))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(out)  # a gate never reads a half-written corpus
        emit(a, {**summary.to_dict(), "out": str(out)},
             f"wrote {summary.written} message(s) to {out}"
             + (f"; {summary.missing} skipped: original no longer kept" if summary.missing
                else ""))
        return 0
    return _with(args, go)
