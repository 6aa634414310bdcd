"""Trace use cases: search and read what was decided about each message, and why; export a
search as CSV or JSON (streamed a page at a time, audited)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mailsift.core.errors import InputError
from mailsift.services.access import NotFound, Principal, require
from mailsift.store import MessageRecord, Page, Store, TraceQuery, TraceRecord
from mailsift.store.deliveries import Attempt, DeliveryLog

__all__ = ["EXPORT_COLUMNS", "EXPORT_FORMATS", "MIN_REF_PREFIX", "RecipientDelivery",
           "TraceService"]

#: The shortest reference prefix accepted for a whole reference ("ms-" and 5 characters).
MIN_REF_PREFIX = 8
EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
#: Columns of an export, in order (CSV header names and JSON keys).
EXPORT_COLUMNS = ("received", "reference", "recipient", "envelope_sender", "from",
                  "from_header", "subject", "category", "action", "status", "score",
                  "decided_by", "policy")
_ROWS_PER_CHUNK = 200
# A spreadsheet runs a cell that starts with one of these as a formula: attackers write
# subjects, so such a cell is written with a leading apostrophe (OWASP's CSV injection advice).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class RecipientDelivery:
    """What happened to one recipient's copy: its status, every attempt to hand it to the
    next hop (with the reply), the next retry when one is due, and its releases."""

    recipient: str
    status: str
    attempts: tuple[Attempt, ...] = ()
    releases: tuple[dict[str, Any], ...] = ()

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def retry_at(self) -> float | None:
        last = self.last
        return last.next_try_at if last is not None and self.status == "deferred" else None

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "bounced")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def export_row(r: TraceRecord) -> dict[str, str | float]:
    return {"received": _iso(r.received_at), "reference": r.message, "recipient": r.recipient,
            "envelope_sender": r.mail_from, "from": r.from_addr, "from_header": r.from_text,
            "subject": r.subject, "category": r.category, "action": r.action,
            "status": r.status, "score": r.score, "decided_by": r.decided_by,
            "policy": r.policy}


def _cell(value: str | float) -> str | float:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class TraceService:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.deliveries = DeliveryLog(store.engine)

    def search(self, actor: Principal, query: TraceQuery, *, cursor: str | None = None,
               limit: int = 50, sort: str = "received", descending: bool = True) -> Page:
        require(actor, "trace.read")
        return self.store.trace.search(query, cursor=cursor, limit=limit, sort=sort,
                                       descending=descending)

    def count(self, actor: Principal, query: TraceQuery) -> tuple[int, int]:
        require(actor, "trace.read")
        return self.store.trace.count(query)

    def get(self, actor: Principal, message: str) -> MessageRecord:
        require(actor, "trace.read")
        rec = self.store.trace.get(message)
        if rec is None:
            raise NotFound(f"no message {message}")
        return rec

    def attempts(self, actor: Principal, message: str) -> list[Attempt]:
        """Every delivery attempt of a message's copies (the next hop's replies)."""
        require(actor, "trace.read")
        return self.deliveries.of(message)

    def delivery(self, actor: Principal, rec: MessageRecord) -> list[RecipientDelivery]:
        """Per recipient of ``rec``: status, delivery attempts and release history."""
        require(actor, "trace.read")
        attempts = self.deliveries.of(rec.id)
        history = self.store.releases.history(rec.id)
        return [RecipientDelivery(
            r.recipient, r.status,
            tuple(a for a in attempts if a.recipient == r.recipient),
            tuple(h for h in history if h["recipient"] == r.recipient))
            for r in rec.recipients]

    def export(self, actor: Principal, query: TraceQuery, fmt: str, *,
               sort: str = "received", descending: bool = True) -> Iterator[str]:
        """The whole result of ``query`` as CSV or a JSON array, in chunks of text read a page
        at a time from the store. Checked and audited (with the query and the row count) when
        called, before the first chunk."""
        require(actor, "trace.read")
        if fmt not in EXPORT_FORMATS:
            raise InputError(f"export format {fmt!r}: csv or json")
        self.store.trace.search(query, limit=1, sort=sort, descending=descending)  # validate
        rows, messages = self.store.trace.count(query)
        self.store.audit.append(actor.name, "trace.export", fmt, {
            "query": query.to_dict(), "format": fmt, "sort": sort,
            "descending": descending, "rows": rows, "messages": messages})
        records = self.store.trace.iterate(query, sort=sort, descending=descending)
        return _csv_chunks(records) if fmt == "csv" else _json_chunks(records)

    def resolve(self, actor: Principal, ref: str) -> str:
        """The full reference a person typed: the reference itself, or an unambiguous prefix
        of at least ``MIN_REF_PREFIX`` characters (``quarantine show``, ``release``...)."""
        require(actor, "trace.read")
        ref = ref.strip()
        found = self.store.trace.refs_starting(ref) if ref else []
        if found and (found[0] == ref or (len(found) == 1 and len(ref) >= MIN_REF_PREFIX)):
            return found[0]
        if len(found) > 1:
            raise InputError(f"{ref} is ambiguous ({found[0]}, {found[1]}, ...); give more of "
                             "the reference")
        if found:
            raise InputError(f"{ref} is too short: give at least {MIN_REF_PREFIX} characters of "
                             "the reference")
        raise NotFound(f"no message {ref}")


def _csv_chunks(records: Iterator[TraceRecord]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for n, rec in enumerate(records, 1):
        writer.writerow({k: _cell(v) for k, v in export_row(rec).items()})
        if n % _ROWS_PER_CHUNK == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _json_chunks(records: Iterator[TraceRecord]) -> Iterator[str]:
    yield "["
    parts: list[str] = []
    first = True
    for rec in records:
        parts.append(("\n" if first else ",\n") + json.dumps(export_row(rec), ensure_ascii=False))
        first = False
        if len(parts) >= _ROWS_PER_CHUNK:
            yield "".join(parts)
            parts.clear()
    yield "".join(parts) + "\n]\n"
