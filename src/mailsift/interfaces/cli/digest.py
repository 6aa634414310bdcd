"""``mailsift digest``: quarantine notification digests to recipients.

    mailsift digest send --now [--recipient ADDR] [--dry-run]
    mailsift digest optout ADDR [--undo]

``send --now`` sends the digests due in the current period at once, exactly as the schedule of
``mailsift serve`` would (``[digest] enabled``): a recipient already sent this period's digest
(by any node) is not sent another, and a recipient with nothing new since its last digest gets
none. ``--dry-run`` prints the digests that would go out (text part) and sends nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from mailsift.config import load_settings
from mailsift.interfaces.cli.args import command_group, store_action
from mailsift.interfaces.cli.storecli import emit

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ds = command_group(sub, "digest", __doc__, dest="dcmd",
                       help="quarantine notification digests to recipients")
    c = store_action(ds, "send", _send, help="send the digests due now")
    c.add_argument("--now", action="store_true", help="now, not on the schedule (default)")
    c.add_argument("--recipient", metavar="ADDR", help="only this recipient's digest")
    c.add_argument("--dry-run", action="store_true", help="print them, send nothing")
    c = store_action(ds, "optout", _optout,
                     help="stop (or with --undo resume) a recipient's digests")
    c.add_argument("address")
    c.add_argument("--undo", action="store_true")


def _service(args: argparse.Namespace) -> object:
    from mailsift.services.digests import DigestService
    from mailsift.store import Store

    settings = load_settings(args.config).settings
    return DigestService(Store.open(settings.store), settings)


def _send(args: argparse.Namespace) -> int:
    from mailsift.services.digests import DigestService

    service = _service(args)
    assert isinstance(service, DigestService)
    try:
        if args.dry_run:
            digests = service.preview(recipient=args.recipient)
            data = [{"recipient": d.recipient, "language": d.language, "subject": d.subject,
                     "items": len(d.items) + d.more, "text": d.text} for d in digests]
            lines = []
            for d in digests:
                lines += [f"=== To: {d.recipient}  Subject: {d.subject}", d.text]
            lines.append(f"{len(digests)} digest(s) would be sent (dry run: nothing sent)")
            emit(args, data, "\n".join(lines))
            return 0
        run = asyncio.run(service.run(recipient=args.recipient))
        if not args.recipient:  # release-request decisions and the admins' batch, too
            from mailsift.services.request_notices import RequestNotices

            notices = RequestNotices(service.store, service.settings,
                                     relay_factory=service.relay_factory, node=service.node)
            asyncio.run(notices.run(run.period))
    finally:
        service.store.close()
    emit(args, run.to_dict(),
         f"period {run.period}: {len(run.sent)} digest(s) sent ({run.items} message(s)), "
         f"{len(run.failed)} failed, {run.taken} already sent or claimed, "
         f"{run.opted_out} opted out, in {run.seconds:.2f} s")
    for rcpt, why in sorted(run.failed.items()):
        sys.stderr.write(f"failed: {rcpt}: {why}\n")
    return 1 if run.failed else 0


def _optout(args: argparse.Namespace) -> int:
    from mailsift.services.digests import DigestService

    service = _service(args)
    assert isinstance(service, DigestService)
    try:
        service.enduser.set_pref(args.address, opted_out=not args.undo)
        service.store.audit.append("cli", "digest.optout" if not args.undo else "digest.optin",
                                   args.address.lower())
    finally:
        service.store.close()
    emit(args, {"address": args.address.lower(), "opted_out": not args.undo},
         f"{args.address.lower()}: digests {'resumed' if args.undo else 'stopped'}")
    return 0
