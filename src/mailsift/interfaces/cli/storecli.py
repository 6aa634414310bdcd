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
    "QUERY_OPTIONS",
    "add_common",
    "add_query_args",
    "emit",
    "fmt_time",
    "open_services",
    "parse_time",
    "principal",
    "query_from",
]


#: the query options of every command that searches the trace: flags and help
QUERY_OPTIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("--sender",), "envelope sender, From address or name: a whole address exactly, "
                    "@domain a domain, other text a part (paypal)"),
    (("--recipient",), "recipient: a whole address exactly, @domain a domain, other text a "
                       "part (ann@)"),
    (("--subject",), "substring of the subject (case-insensitive)"),
    (("--since",), "from this time: ISO 8601, epoch seconds or -2h/-7d"),
    (("--until",), "before this time (same forms)"),
    (("--category",), "final category (phish, spam, ...)"),
    (("--action",), "action (deliver, quarantine, ...)"),
    (("--status",), "delivery status (quarantined, released, ...)"),
    (("--finding", "--rule"), "finding code, e.g. RULE_X"),
    (("--artifact",), "artifact name, e.g. rules/default"),
    (("--version",), "artifact version (or the finding's, without --artifact)"),
    (("--listed",), "an IP or domain a DNS list named (RBL_*/URIBL_* evidence)"),
    (("--message-id",), "the Message-ID header (exact, <> optional)"),
    (("--ref",), "a mailsift reference, whole or its beginning"),
    (("--client-ip",), "the connecting client's address (exact)"),
    (("--url-domain",), "a host or domain the message linked to"),
    (("--attachment",), "the SHA-256 of an attached file"),
)


def add_query_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("query")
    for flags, help_text in QUERY_OPTIONS:
        g.add_argument(*flags, help=help_text)


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
