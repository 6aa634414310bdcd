"""``mailsift quarantine``: list, show, download, release, delete; requests, holds, purge.

    mailsift quarantine list [query flags] [--status S] [--limit N] [--cursor TOKEN]
    mailsift quarantine show ID
    mailsift quarantine download ID [-o FILE]
    mailsift quarantine release ID [ID ...] [--rcpt ADDR ...] [--rescan]
    mailsift quarantine release [query flags] --dry-run        (count what would go)
    mailsift quarantine release [query flags] --yes --reason TEXT  (bulk release, resumable)
    mailsift quarantine release --resume JOB
    mailsift quarantine delete ID [ID ...] --reason TEXT
    mailsift quarantine requests [--state pending]
    mailsift quarantine approve|deny REQUEST-ID [--note TEXT]
    mailsift quarantine hold NAME [query flags] [--reason TEXT] | unhold HOLD-ID | holds
    mailsift quarantine purge [--days N]
    mailsift quarantine jobs

ID is a message reference as printed (ms-...), or an unambiguous prefix of one.
Releasing is idempotent: a recipient who already got a message is skipped, whoever released it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path

from mailsift.core.errors import InputError
from mailsift.interfaces.cli.args import command_group, store_action
from mailsift.interfaces.cli.storecli import (
    add_query_args,
    emit,
    fmt_time,
    open_services,
    principal,
    query_from,
)
from mailsift.interfaces.cli.trace import render_page, render_record
from mailsift.services.access import require_reason
from mailsift.services.store_services import StoreServices

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    qs = command_group(sub, "quarantine", __doc__, dest="qcmd",
                       help="quarantined mail: list, show, release, delete")

    c = store_action(qs, "list", _list, help="list quarantined recipients")
    add_query_args(c)
    c.add_argument("--limit", type=int, default=50)
    c.add_argument("--cursor")

    c = store_action(qs, "show", _show, help="explanation, headers and a safe preview")
    c.add_argument("id")
    c.add_argument("--html", action="store_true", help="print the sanitised HTML preview")

    c = store_action(qs, "download", _download, help="write the original .eml")
    c.add_argument("id")
    c.add_argument("-o", "--output", help="file (default: stdout)")

    c = store_action(qs, "release", _release,
                     help="re-deliver to the next hop (one, many, or by query)")
    c.add_argument("ids", nargs="*", metavar="ID")
    c.add_argument("--rcpt", action="extend", nargs="+", default=[], help="only these")
    c.add_argument("--rescan", action="store_true", help="scan again first; keep what is bad")
    c.add_argument("--dry-run", action="store_true", help="only count what a bulk release sends")
    c.add_argument("--yes", action="store_true", help="really run a bulk release")
    c.add_argument("--reason", dest="bulk_reason", default="",
                   help="why (audited; required with --yes)")
    c.add_argument("--all", action="store_true", help="allow a bulk release with no filter")
    c.add_argument("--resume", metavar="JOB", help="resume an interrupted bulk release")
    c.add_argument("--resend-uncertain", action="store_true",
                   help="also re-send copies whose delivery is uncertain (at-least-once)")
    add_query_args(c)

    c = store_action(qs, "delete", _delete, help="delete quarantined originals (trace stays)")
    c.add_argument("ids", nargs="+", metavar="ID")
    c.add_argument("--reason", required=True, help="why (required, audited)")

    c = store_action(qs, "requests", _requests, help="release requests from recipients")
    c.add_argument("--state", choices=("pending", "approved", "denied"))

    for name in ("approve", "deny"):
        c = store_action(qs, name, _decide, help=f"{name} a release request")
        c.add_argument("request", type=int)
        c.add_argument("--note", default="")
        c.set_defaults(approve=name == "approve")

    c = store_action(qs, "hold", _hold, help="place an incident hold on the messages of a query")
    c.add_argument("name")
    c.add_argument("--reason", default="")
    add_query_args(c)

    c = store_action(qs, "unhold", _unhold, help="release an incident hold")
    c.add_argument("hold")

    store_action(qs, "holds", _holds, help="list incident holds")

    c = store_action(qs, "purge", _purge,
                     help="delete what is older than the retention (holds kept)")
    c.add_argument("--days", type=float, help="default: store.retention_days")

    store_action(qs, "jobs", _jobs, help="bulk release jobs")


def _with(args: argparse.Namespace, fn: object, *, rescan: bool = False) -> int:
    svc = open_services(args, rescan=rescan)
    try:
        return int(fn(svc, args))  # type: ignore[operator]
    finally:
        svc.close()


def _ref(svc: StoreServices, args: argparse.Namespace, ref: str) -> str:
    """The full reference of what was typed (a prefix is accepted when unambiguous)."""
    return svc.trace.resolve(principal(args), ref)


def _list(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        page = svc.quarantine.search(principal(a), query_from(a), cursor=a.cursor, limit=a.limit)
        emit(a, page.to_dict(), render_page(page))
        return 0
    return _with(args, go)


def _show(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        view = svc.quarantine.show(principal(a), _ref(svc, a, a.id))
        text = [render_record(view.record), "", "releases:"]
        text += [f"  {r}: {s} ({rid})" + (f": {view.release_notes[r]}"
                                          if view.release_notes.get(r) else "")
                 for r, (s, rid) in view.releases.items()] or ["  none"]
        text += ["", "headers:"] + [f"  {k}: {v[:200]}" for k, v in view.headers]
        text += ["", "text:", view.text[:4000]]
        if a.html:
            text += ["", "preview (sanitised HTML):", view.preview_html]
        emit(a, view.to_dict(), "\n".join(text))
        return 0
    return _with(args, go)


def _download(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        raw = svc.quarantine.download(principal(a), _ref(svc, a, a.id))
        if a.output:
            Path(a.output).write_bytes(raw)
        else:
            sys.stdout.buffer.write(raw)
            sys.stdout.flush()
        return 0
    return _with(args, go)


def _release(args: argparse.Namespace) -> int:
    return _with(args, _release_in, rescan=args.rescan)


def _release_in(svc: StoreServices, a: argparse.Namespace) -> int:
    actor = principal(a)
    if a.ids:
        reports = []
        for mid in [_ref(svc, a, i) for i in a.ids]:
            rep = asyncio.run(svc.release.release(actor, mid, a.rcpt or None, rescan=a.rescan,
                                                  reason=a.bulk_reason,
                                                  reclaim_uncertain=a.resend_uncertain))
            reports.append(rep.to_dict())
        lines = []
        for r in reports:
            lines.append(f"{r['message']}: sent {len(r['sent'])}, already {len(r['already'])}, "
                         f"failed {len(r['failed'])}, uncertain {len(r['uncertain'])}, "
                         f"kept {len(r['kept'])}"
                         + (f" (to {r['next_hop']})" if r.get("next_hop") else ""))
            lines += [f"  sent {k}: {v}" for k, v in r.get("replies", {}).items()]
            lines += [f"  failed {k}: {v}" for k, v in r["failed"].items()]
            lines += [f"  kept {k}: {v}" for k, v in r["kept"].items()]
        emit(a, reports, "\n".join(lines))
        bad = any(r["failed"] or r["uncertain"] for r in reports)
        return 1 if bad else 0
    if a.resume:
        job = asyncio.run(svc.bulk.run(actor, a.resume, reclaim_uncertain=a.resend_uncertain))
        emit(a, job.to_dict(), _job_line(job.to_dict()))
        return 0 if job.failed == 0 else 1
    query = query_from(a)
    if not query.to_dict() and not a.all:
        raise InputError("a bulk release needs a query (or --all); see --help")
    preview = svc.bulk.preview(actor, query)
    if a.dry_run or not a.yes:
        emit(a, preview.to_dict(),
             f"would release {preview.recipients} recipient copies of {preview.messages} "
             f"messages ({preview.already_released} matching copies already released)"
             + ("" if a.dry_run else "\nadd --yes to release them"))
        return 0 if a.dry_run else 1
    job = svc.bulk.start(actor, query, recipients=tuple(a.rcpt) or None, rescan=a.rescan,
                         reason=require_reason(a.bulk_reason, "a bulk release (--reason)"))
    print(f"release job {job.id}: {job.total} recipient copies", file=sys.stderr)
    done = asyncio.run(svc.bulk.run(actor, job.id, reclaim_uncertain=a.resend_uncertain))
    emit(a, done.to_dict(), _job_line(done.to_dict()))
    return 0 if done.failed == 0 else 1


def _job_line(j: dict[str, object]) -> str:
    return (f"job {j['id']} {j['state']}: total {j['total']}, sent {j['sent']}, "
            f"skipped {j['skipped']} (already released), failed {j['failed']}, kept {j['kept']}")


def _delete(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        why = require_reason(a.reason, "deleting an original")
        done = {mid: svc.quarantine.delete(principal(a), mid, reason=why)
                for mid in [_ref(svc, a, i) for i in a.ids]}
        emit(a, done, "\n".join(f"{m}: deleted for {n} recipients" for m, n in done.items()))
        return 0
    return _with(args, go)


def _requests(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        reqs = svc.quarantine.requests(principal(a), state=a.state)
        emit(a, [r.to_dict() for r in reqs], "\n".join(
            f"#{r.id} {r.state:8} {fmt_time(r.created_at)} {r.message} for {r.recipient}: "
            f"{r.reason}" for r in reqs) or "no requests")
        return 0
    return _with(args, go)


def _decide(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        info, report = asyncio.run(svc.release.decide_request(principal(a), a.request,
                                                              approve=a.approve, note=a.note))
        data = {"request": info.to_dict(), "release": report.to_dict() if report else None}
        emit(a, data, f"request #{info.id} {info.state}"
             + (f"; sent to {', '.join(report.sent) or 'nobody'}" if report else ""))
        return 0
    return _with(args, go)


def _hold(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        q = query_from(a)
        if not q.to_dict():
            raise InputError("a hold needs a query")
        h = svc.retention.place_hold(principal(a), a.name, q, reason=a.reason)
        emit(a, dataclasses.asdict(h), f"hold {h.id} ({h.name}) on {h.messages} messages")
        return 0
    return _with(args, go)


def _unhold(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        svc.retention.release_hold(principal(a), a.hold)
        emit(a, {"released": a.hold}, f"hold {a.hold} released")
        return 0
    return _with(args, go)


def _holds(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        hs = svc.retention.holds(principal(a))
        emit(a, [dataclasses.asdict(h) for h in hs], "\n".join(
            f"{h.id} {h.name}: {h.messages} messages, "
            f"{'active' if h.released_at is None else 'released'} - {h.reason}" for h in hs)
             or "no holds")
        return 0
    return _with(args, go)


def _purge(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        r = svc.retention.purge(principal(a), a.days)
        emit(a, dataclasses.asdict(r), f"purged {r.messages} messages, {r.blobs} originals; "
             f"{r.held} kept under hold")
        return 0
    return _with(args, go)


def _jobs(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        jobs = [j.to_dict() for j in svc.store.jobs.list()]
        emit(a, jobs, "\n".join(_job_line(j) for j in jobs) or "no jobs")
        return 0
    return _with(args, go)
