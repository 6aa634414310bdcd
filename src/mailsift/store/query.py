"""Trace search: the query object, its SQL conditions and keyset pagination cursors.

Every filter is a condition on the ``trace`` table (one row per message and recipient) or an
``IN``/``EXISTS`` over the indexed child tables (findings, artifact versions, link hosts,
attachment hashes, the messages' Message-ID key and client address), so a search never scans
findings as text. Pages are keyset-paged on ``(sort column, id)``, newest first by default:
deep pages cost the same as the first, and rows inserted while paging neither repeat nor
vanish. A page knows the way forward and back (``next_cursor``, ``prev_cursor``).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, tuple_

from mailsift.core.errors import InputError
from mailsift.store.models import ArtifactVersion, FindingRow, MessageRow, TraceRow
from mailsift.store.search import (
    MessageAttachment,
    MessageUrl,
    domain_key,
    message_id_key,
)

__all__ = ["SORTS", "Cursor", "Position", "TraceQuery", "decode_cursor", "decode_position",
           "encode_cursor", "encode_position"]

Cursor = tuple[float, int]
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FULL_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")

#: The columns a search may be sorted by (the console's column headings).
SORTS: dict[str, Any] = {
    "received": TraceRow.received_at,
    "sender": TraceRow.from_addr,
    "recipient": TraceRow.recipient,
    "subject": TraceRow.subject,
    "category": TraceRow.category,
    "action": TraceRow.action,
    "status": TraceRow.status,
    "score": TraceRow.score,
}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _address_condition(value: str, *columns: Any) -> ColumnElement[bool]:
    """A whole address matches exactly, ``@domain`` a whole domain, anything else (``ann@``,
    ``paypal``) is a case-insensitive part of the address (or of the From header's name)."""
    v = value.strip().lower()
    if v.startswith("@"):
        return or_(*(c.endswith(v, autoescape=True) for c in columns[:2]))
    if _FULL_ADDRESS.match(v):
        return or_(*(c == v for c in columns[:2]))
    return or_(*(func.lower(c).contains(v, autoescape=True) for c in columns))


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """What to look for. Empty fields do not filter.

    ``sender`` matches the envelope sender, the From address or the From header's display name;
    ``recipient`` the recipient: a whole address exactly, ``@example.com`` a whole domain,
    anything else (``paypal``, ``ann@``) as a case-insensitive part. ``subject`` is a
    case-insensitive substring; ``since``/``until`` bound the receive
    time (``since <= t < until``); ``finding`` is a finding code, ``artifact``/``version`` an
    artifact version that contributed; when ``version`` is given without ``artifact`` it
    qualifies ``finding`` (the version of the rule or model that emitted it). ``listed`` is an
    IP address or domain a DNS list named (``RBL_*``/``URIBL_*`` evidence): every message in
    which that subject was listed. Exact look-ups: ``message_id`` (the Message-ID header, with
    or without angle brackets, any case), ``ref`` (a mailsift reference, whole or its
    beginning), ``client_ip`` (the connecting client), ``url_domain`` (a host or registrable
    domain the message linked to: ``paypal.com`` finds links to ``www.paypal.com``) and
    ``attachment`` (the SHA-256 of an attached file, archive members included).
    """

    sender: str | None = None
    recipient: str | None = None
    subject: str | None = None
    since: float | None = None
    until: float | None = None
    category: str | None = None
    action: str | None = None
    status: str | None = None
    finding: str | None = None
    artifact: str | None = None
    version: str | None = None
    message: str | None = None
    listed: str | None = None
    message_id: str | None = None
    ref: str | None = None
    client_ip: str | None = None
    url_domain: str | None = None
    attachment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TraceQuery:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InputError(f"unknown query field(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def conditions(self) -> list[ColumnElement[bool]]:
        for name, value in asdict(self).items():
            # no stored text holds one, and PostgreSQL refuses it in a parameter
            if isinstance(value, str) and "\x00" in value:
                raise InputError(f"{name}: a NUL character cannot be searched for")
        t = TraceRow
        out: list[ColumnElement[bool]] = []
        if self.sender and self.sender.strip():
            out.append(_address_condition(self.sender, t.mail_from, t.from_addr, t.from_text))
        if self.recipient and self.recipient.strip():
            out.append(_address_condition(self.recipient, t.recipient))
        if self.subject:
            out.append(func.lower(t.subject).contains(self.subject.lower(), autoescape=True))
        if self.since is not None:
            out.append(t.received_at >= self.since)
        if self.until is not None:
            out.append(t.received_at < self.until)
        if self.category:
            out.append(t.category == self.category)
        if self.action:
            out.append(t.action == self.action)
        if self.status:
            out.append(t.status == self.status)
        if self.message:
            out.append(t.message_pk == self.message)
        out.extend(self._lookups())
        # Findings are selective (a rule fires on few messages), so "message_pk IN (index
        # lookup)" lets the planner start from the matching findings instead of walking the
        # trace by time and probing each row (15 ms -> 1 ms at 50k rows on SQLite). Artifact
        # versions are the opposite - nearly every message records the current rule pack - so
        # they stay a correlated EXISTS that rides on the time or recipient index (an IN list of
        # 100k ids measured 140-575 ms over 1M rows with a one-day window).
        if self.finding:
            fq = select(FindingRow.message_pk).where(FindingRow.code == self.finding)
            if self.version and not self.artifact:
                fq = fq.where(FindingRow.version == self.version)
            out.append(t.message_pk.in_(fq))
        if self.listed:
            # evidence is stored as a JSON list of strings, each "<subject> (<role>) listed: ..."
            subject = json.dumps(self.listed.strip().lower())[:-1] + " ("
            lq = select(FindingRow.message_pk).where(
                or_(FindingRow.code.startswith("RBL_"), FindingRow.code.startswith("URIBL_")),
                FindingRow.evidence_json.contains(subject, autoescape=True))
            out.append(t.message_pk.in_(lq))
        if self.artifact:
            acond = and_(ArtifactVersion.message_pk == t.message_pk,
                         ArtifactVersion.artifact == self.artifact)
            if self.version:
                acond = and_(acond, ArtifactVersion.version == self.version)
            out.append(exists(select(ArtifactVersion.artifact).where(acond)))
        elif self.version and not self.finding:
            out.append(exists(select(ArtifactVersion.artifact).where(
                ArtifactVersion.message_pk == t.message_pk,
                ArtifactVersion.version == self.version)))
        return out

    def _lookups(self) -> list[ColumnElement[bool]]:
        """The exact look-ups, each an index probe on its own table."""
        t = TraceRow
        out: list[ColumnElement[bool]] = []
        if self.ref and self.ref.strip():
            ref = self.ref.strip()
            out.append(t.message_pk.like(_escape_like(ref) + "%", escape="\\"))
        if self.message_id and self.message_id.strip():
            if not message_id_key(self.message_id):
                raise InputError(f"not a Message-ID: {self.message_id!r}")
            out.append(t.message_pk.in_(select(MessageRow.id).where(
                MessageRow.msgid_key == message_id_key(self.message_id))))
        if self.client_ip and self.client_ip.strip():
            try:
                ip = str(ipaddress.ip_address(self.client_ip.strip()))
            except ValueError as exc:
                raise InputError(f"not an IP address: {self.client_ip!r}") from exc
            out.append(t.message_pk.in_(select(MessageRow.id).where(MessageRow.client_ip == ip)))
        if self.url_domain and domain_key(self.url_domain):
            out.append(t.message_pk.in_(select(MessageUrl.message_pk).where(
                MessageUrl.domain == domain_key(self.url_domain))))
        if self.attachment and self.attachment.strip():
            digest = self.attachment.strip().lower()
            if not _SHA256.match(digest):
                raise InputError(f"not a SHA-256 (64 hex digits): {self.attachment!r}")
            out.append(t.message_pk.in_(select(MessageAttachment.message_pk).where(
                MessageAttachment.sha256 == digest)))
        return out


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page starts or ends: the sort, the row's sort value and id, and whether the
    page wanted is the one after (``forward``) or before it."""

    sort: str
    descending: bool
    value: Any
    row_id: int
    forward: bool = True

    def condition(self) -> ColumnElement[bool]:
        col = SORTS[self.sort]
        after = self.descending == self.forward  # walking towards smaller values
        key, here = tuple_(col, TraceRow.id), tuple_(self.value, self.row_id)
        return key < here if after else key > here


def check_sort(sort: str) -> str:
    if sort not in SORTS:
        raise InputError(f"cannot sort by {sort!r} (one of: {', '.join(SORTS)})")
    return sort


def encode_position(pos: Position) -> str:
    raw = json.dumps([pos.sort, int(pos.descending), pos.value, pos.row_id, int(pos.forward)],
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_position(token: str | None, sort: str, descending: bool) -> Position | None:
    """A cursor of either form: a page position, or the older ``time:id`` cursor (newest
    first by receive time, as a bulk release job may have stored it)."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InputError(f"invalid page cursor {token!r}") from exc
    if not raw.startswith("["):
        ts, row_id = decode_cursor(token) or (0.0, 0)
        return Position("received", True, ts, row_id)
    try:
        s, desc, value, row_id, fwd = json.loads(raw)
        pos = Position(str(s), bool(desc), value, int(row_id), bool(fwd))
    except (ValueError, TypeError) as exc:
        raise InputError(f"invalid page cursor {token!r}") from exc
    if pos.sort != sort or pos.descending != descending or pos.sort not in SORTS:
        raise InputError("the page cursor belongs to another sort order: start from the first "
                         "page")
    if not isinstance(value, (int, float, str)):
        raise InputError(f"invalid page cursor {token!r}")
    return pos


def keyset_before(cursor: Cursor | None) -> ColumnElement[bool] | None:
    """Rows strictly after ``cursor`` in newest-first order."""
    if cursor is None:
        return None
    ts, row_id = cursor
    # A row-value comparison, not "a < x OR (a = x AND b < y)": both SQLite and PostgreSQL
    # turn it into one range scan of ix_trace_time.
    return tuple_(TraceRow.received_at, TraceRow.id) < tuple_(ts, row_id)


def encode_cursor(cursor: Cursor) -> str:
    raw = f"{cursor[0]!r}:{cursor[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str | None) -> Cursor | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        ts, row_id = raw.split(":", 1)
        return float(ts), int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InputError(f"invalid page cursor {token!r}") from exc
