"""``mailsift trace``: search the message trace, or show everything recorded about one message.

    mailsift trace [--sender A] [--recipient R] [--subject S] [--since T] [--until T]
                   [--category C] [--action A] [--status S] [--finding CODE]
                   [--artifact NAME] [--version V] [--listed IP-OR-DOMAIN]
                   [--message-id ID] [--ref PREFIX] [--client-ip IP] [--url-domain D]
                   [--attachment SHA256] [--sort COLUMN] [--asc] [--limit N]
                   [--cursor TOKEN] [--count] [--export csv|json]
    mailsift trace MESSAGE-ID

--export writes every matching row (not one page) to standard output, read a page at a time;
it is recorded in the audit log like an export from the console or the API.

MESSAGE-ID is a reference as printed (ms-...), or an unambiguous prefix of one.
"""

from __future__ import annotations

import argparse
import json
import sys

from mailsift.interfaces.cli.args import store_action
from mailsift.interfaces.cli.storecli import (
    add_query_args,
    emit,
    fmt_time,
    open_services,
    principal,
    query_from,
)
from mailsift.store import MessageRecord, Page
from mailsift.store.deliveries import Attempt
from mailsift.store.query import SORTS

__all__ = ["register", "render_page", "render_record"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = store_action(sub, "trace", run,
                     help="search the message trace", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("message", nargs="?", metavar="MESSAGE-ID", help="show one message")
    add_query_args(p)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--cursor", help="next page (printed at the end of a page)")
    p.add_argument("--count", action="store_true", help="only count the matches")
    p.add_argument("--sort", default="received", choices=sorted(SORTS),
                   help="column to sort by (default: received)")
    p.add_argument("--asc", action="store_true", help="ascending (default: descending)")
    p.add_argument("--export", choices=("csv", "json"),
                   help="write every matching row as CSV or JSON (audited)")


def render_page(page: Page) -> str:
    # the whole reference, so what is printed can be pasted into show/release/trace
    lines = [f"{'received (UTC)':19}  {'message':27}  {'recipient':28}  {'category':12}  "
             f"{'action':10}  {'status':11}  subject"]
    for r in page.items:
        lines.append(f"{fmt_time(r.received_at):19}  {r.message:27}  {r.recipient[:28]:28}"
                     f"  {r.category:12}  {r.action:10}  {r.status:11}  {r.subject[:60]}")
    if page.prev_cursor:
        lines.append(f"-- before: --cursor {page.prev_cursor}")
    if page.next_cursor:
        lines.append(f"-- more: --cursor {page.next_cursor}")
    return "\n".join(lines)


def render_record(rec: MessageRecord, attempts: list[Attempt] | None = None) -> str:
    out = [
        f"message   {rec.id}  received {fmt_time(rec.received_at)} UTC  size {rec.size}",
        f"envelope  from <{rec.mail_from or ''}> to {', '.join(rec.rcpt_to)}"
        f"  client {rec.client_ip or '-'} helo {rec.helo or '-'}",
        f"From      {rec.from_header}",
        f"To        {rec.to_header}",
        f"Subject   {rec.subject}",
        f"Msg-ID    {rec.message_id_header}   Date {rec.date_header}",
        f"verdict   {rec.category} -> {rec.action} (score {rec.score:g}, step {rec.decided_by})",
        f"why       {rec.explanation}",
        "recipients:",
    ]
    for r in rec.recipients:
        out.append(f"  {r.recipient or '(none)'}: {r.category} -> {r.action}  [{r.status}]"
                   f"  policy {r.policy or '-'}")
        for a in attempts or ():
            if a.recipient == r.recipient:
                retry = f", next try {fmt_time(a.next_try_at)} UTC" if a.next_try_at else ""
                out.append(f"    {fmt_time(a.at)} {a.outcome} (attempt {a.attempt}{retry}): "
                           f"{a.reply or '-'}")
    out.append("findings:")
    for f in rec.findings:
        ver = f"  {f['artifact']}@{f['version']}" if f.get("artifact") else ""
        state = f" ({f['state']})" if f.get("state") not in (None, "active") else ""
        out.append(f"  {f['code']:32} {f['weight']:>6g}  {f.get('category') or '-':10}"
                   f"{ver}{state}  {'; '.join(map(str, f['evidence']))[:100]}")
    out.append("versions: " + ", ".join(f"{a}={v}" for a, v in sorted(rec.versions.items())))
    if rec.auth:
        out.append("auth: " + json.dumps(rec.auth.get("header") or rec.auth)[:300])
    if rec.holds:
        out.append("holds: " + ", ".join(rec.holds))
    out.append(f"original kept: {'yes' if rec.raw_available else 'no'}")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    svc = open_services(args)
    try:
        actor = principal(args)
        if args.message:
            rec = svc.trace.get(actor, svc.trace.resolve(actor, args.message))
            attempts = svc.trace.attempts(actor, rec.id)
            data = {**rec.to_dict(), "deliveries": [a.to_dict() for a in attempts]}
            emit(args, data, render_record(rec, attempts))
            return 0
        query = query_from(args)
        if args.count:
            n, m = svc.trace.count(actor, query)
            emit(args, {"recipients": n, "messages": m}, f"{n} recipients in {m} messages")
            return 0
        if args.export:
            for chunk in svc.trace.export(actor, query, args.export, sort=args.sort,
                                          descending=not args.asc):
                sys.stdout.write(chunk)
            return 0
        page = svc.trace.search(actor, query, cursor=args.cursor, limit=args.limit,
                                sort=args.sort, descending=not args.asc)
        emit(args, page.to_dict(), render_page(page))
        return 0
    finally:
        svc.close()
