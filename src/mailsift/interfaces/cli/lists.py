"""``mailsift lists``: allow/block entries (sender, domain, ip, url, hash, spoof_pair).

    mailsift lists show [--kind K] [--scope S] [--action allow|block] [--active]
    mailsift lists add KIND VALUE allow|block [--scope admin|incident|user:ADDR]
                       [--expires 7d] [--note TEXT] [--force --reason TEXT]
    mailsift lists remove ENTRY-ID --reason TEXT
    mailsift lists snapshot            (what policy sees now, with its version)

Sender and domain allows only apply when authentication aligns (see docs/precedence.md);
incident allows must expire. A wide entry (a free-mail or public-suffix domain, a network wider
than /24 or /48, a public-suffix host) is refused unless added with --force and a --reason; it is
audited as lists.force and raises an alert.
"""

from __future__ import annotations

import argparse

from mailsift.core.lists import LIST_KINDS, ListEntry
from mailsift.interfaces.cli.args import command_group, store_action
from mailsift.interfaces.cli.storecli import (
    emit,
    fmt_time,
    open_services,
    parse_time,
    principal,
)
from mailsift.services.access import require_reason
from mailsift.services.lists import entry_dict, parse_duration
from mailsift.services.store_services import StoreServices

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ls = command_group(sub, "lists", __doc__, dest="lcmd", help="allow/block lists")

    c = store_action(ls, "show", _show, aliases=["list"], help="list entries")
    c.add_argument("--kind", choices=LIST_KINDS)
    c.add_argument("--scope")
    c.add_argument("--action", choices=("allow", "block"))
    c.add_argument("--active", action="store_true", help="hide expired entries")

    c = store_action(ls, "add", _add, help="add an entry")
    c.add_argument("kind", choices=LIST_KINDS)
    c.add_argument("value")
    c.add_argument("action", choices=("allow", "block"))
    c.add_argument("--scope", default="admin", help="admin, incident or user:ADDRESS")
    c.add_argument("--expires", help="duration (7d, 12h) or a time (ISO 8601)")
    c.add_argument("--note", default="")
    c.add_argument("--force", action="store_true",
                   help="add a wide entry (audited as lists.force, with an alert)")
    c.add_argument("--reason", default="", help="why a forced entry is needed (required)")

    c = store_action(ls, "remove", _remove, help="remove an entry by id")
    c.add_argument("entry_id")
    c.add_argument("--reason", required=True, help="why (required, audited)")

    store_action(ls, "snapshot", _snapshot,
                 help="the active entries policy reads, with their version")


def _line(e: ListEntry) -> str:
    exp = f"until {fmt_time(e.expires_at)}" if e.expires_at else "no expiry"
    return (f"{e.entry_id[:12]}  {e.scope:24} {e.action:5} {e.kind:10} {e.value}  ({exp}; "
            f"by {e.author or '-'}{'; ' + e.note if e.note else ''})")


def _run(args: argparse.Namespace, fn: object) -> int:
    svc = open_services(args)
    try:
        return int(fn(svc, args))  # type: ignore[operator]
    finally:
        svc.close()


def _show(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        entries = svc.lists.entries(principal(a), kind=a.kind, scope=a.scope, action=a.action,
                                    include_expired=not a.active)
        emit(a, [entry_dict(e) for e in entries],
             "\n".join(_line(e) for e in entries) or "no entries")
        return 0
    return _run(args, go)


def _expiry(text: str | None, now: float) -> float | None:
    if not text:
        return None
    if text[-1:].lower() in "smhdw" and text[:-1].replace(".", "", 1).isdigit():
        return now + parse_duration(text)
    return parse_time(text)


def _add(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        e = svc.lists.add(principal(a), a.kind, a.value, a.action, scope=a.scope,
                          expires_at=_expiry(a.expires, svc.store.clock.now()), note=a.note,
                          force=a.force, reason=a.reason)
        emit(a, entry_dict(e), f"added {e.entry_id}: {_line(e)}")
        return 0
    return _run(args, go)


def _remove(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        e = svc.lists.remove(principal(a), a.entry_id,
                             reason=require_reason(a.reason, "removing a list entry"))
        emit(a, entry_dict(e), f"removed {_line(e)}")
        return 0
    return _run(args, go)


def _snapshot(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        snap = svc.lists.snapshot()
        emit(a, {"version": snap.version, "taken_at": snap.taken_at,
                 "entries": [entry_dict(e) for e in snap.entries]},
             f"version {snap.version}: {len(snap.entries)} active entries\n"
             + "\n".join(_line(e) for e in snap.entries))
        return 0
    return _run(args, go)
