"""Shared pieces of the store commands: query flags, opening the services, time and output.

The CLI acts as an administrator (it runs where the data lives); the audit log names it
``cli:<login>`` unless ``--as NAME`` says otherwise.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime
from typing import Any

from mailsift.config import load_settings
from mailsift.core.errors import InputError
from mailsift.interfaces.cli.args import add_common
from mailsift.services.access import Principal
from mailsift.services.lists import parse_duration
from mailsift.services.store_services import StoreServices
from mailsift.store import TraceQuery

__all__ = [
    "add_common",
    "add_query_args",
    "emit",
    "fmt_time",
    "open_services",
    "parse_time",
    "principal",
    "query_from",
]


def add_query_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("query")
    g.add_argument("--sender", help="envelope sender, From address or name: a whole address "
                   "exactly, @domain a domain, other text a part (paypal)")
    g.add_argument("--recipient", help="recipient: a whole address exactly, @domain a domain, "
                   "other text a part (ann@)")
    g.add_argument("--subject", help="substring of the subject (case-insensitive)")
    g.add_argument("--since", help="from this time: ISO 8601, epoch seconds or -2h/-7d")
    g.add_argument("--until", help="before this time (same forms)")
    g.add_argument("--category", help="final category (phish, spam, ...)")
    g.add_argument("--action", help="action (deliver, quarantine, ...)")
    g.add_argument("--status", help="delivery status (quarantined, released, ...)")
    g.add_argument("--finding", "--rule", dest="finding", help="finding code, e.g. RULE_X")
    g.add_argument("--artifact", help="artifact name, e.g. rules/default")
    g.add_argument("--version", help="artifact version (or the finding's, without --artifact)")
    g.add_argument("--listed", help="an IP or domain a DNS list named (RBL_*/URIBL_* evidence)")
    g.add_argument("--message-id", help="the Message-ID header (exact, <> optional)")
    g.add_argument("--ref", help="a mailsift reference, whole or its beginning")
    g.add_argument("--client-ip", help="the connecting client's address (exact)")
    g.add_argument("--url-domain", help="a host or domain the message linked to")
    g.add_argument("--attachment", help="the SHA-256 of an attached file")


def parse_time(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    t = text.strip()
    if t.startswith("-"):
        return datetime.now(UTC).timestamp() - parse_duration(t[1:])
    try:
        return float(t)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"invalid time {text!r} (ISO 8601, epoch seconds or -2h)") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def fmt_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def query_from(args: argparse.Namespace) -> TraceQuery:
    return TraceQuery(
        sender=args.sender, recipient=args.recipient, subject=args.subject,
        since=parse_time(args.since), until=parse_time(args.until), category=args.category,
        action=getattr(args, "action", None), status=getattr(args, "status", None),
        finding=args.finding, artifact=args.artifact, version=args.version,
        listed=getattr(args, "listed", None), message_id=getattr(args, "message_id", None),
        ref=getattr(args, "ref", None), client_ip=getattr(args, "client_ip", None),
        url_domain=getattr(args, "url_domain", None),
        attachment=getattr(args, "attachment", None),
    )


def open_services(args: argparse.Namespace, *, rescan: bool = False) -> StoreServices:
    settings = load_settings(getattr(args, "config", None)).settings
    scan = None
    if rescan:
        from mailsift.pipeline.build import build_pipeline

        pipeline = build_pipeline(settings)
        scan = pipeline.scan
    return StoreServices.open(settings, rescan=scan)


def principal(args: argparse.Namespace) -> Principal:
    name = getattr(args, "actor", None)
    if not name:
        try:
            name = f"cli:{getpass.getuser()}"
        except (KeyError, OSError):
            name = "cli"
    return Principal(name, "admin")


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if getattr(args, "json", False):
        json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
