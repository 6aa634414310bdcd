"""Message trace: record every scanned message per recipient, search it, read it back.

``record``/``record_many`` are what the gateway calls after a verdict: raw bytes go to the blob
store first (durably), then all rows of a batch are inserted in one transaction — one commit
(one fsync) per batch is what lets the gateway record hundreds of messages per second.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from mailsift.core.errors import StoreError
from mailsift.core.protocols import Clock
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Action, Verdict
from mailsift.store.blobs import Blobs
from mailsift.store.db import read_only
from mailsift.store.deliveries import DeliveryLog
from mailsift.store.models import (
    ArtifactVersion,
    FindingRow,
    Hold,
    HoldMember,
    MessageRow,
    TraceRow,
)
from mailsift.store.query import (
    SORTS,
    Position,
    TraceQuery,
    check_sort,
    decode_position,
    encode_position,
)
from mailsift.store.records import MessageRecord, Page, TraceRecord
from mailsift.store.search import (
    MessageAttachment,
    MessageUrl,
    attachment_rows,
    message_id_key,
    url_rows,
)

__all__ = ["STATUSES", "Recordable", "TraceStore", "status_for"]

#: Delivery statuses of a trace row.
STATUSES = (
    "accepted", "delivered", "quarantined", "released", "deleted", "rejected", "deferred",
    "failed", "bounced",
)

_STATUS_OF_ACTION = {
    Action.DELIVER: "accepted",
    Action.TAG: "accepted",
    Action.JUNK: "accepted",
    Action.QUARANTINE: "quarantined",
    Action.REJECT: "rejected",
    Action.TEMPFAIL: "deferred",
}


def status_for(action: Action) -> str:
    """The initial delivery status of a recipient given the verdict's action."""
    return _STATUS_OF_ACTION[action]


@dataclass(frozen=True, slots=True)
class Recordable:
    """One scanned message handed to ``record_many``."""

    result: ScanResult
    raw: bytes
    received_at: float | None = None


# The statements the gateway runs for every message, built once: building a statement and its
# cache key costs more than SQLite takes to run it.
_STATUSES_OF = select(TraceRow.message_pk, TraceRow.recipient, TraceRow.status).where(
    TraceRow.message_pk.in_(bindparam("pks", expanding=True)))


def _set_status_stmt(by_recipient: bool, only_from: bool) -> Any:
    stmt = update(TraceRow).where(TraceRow.message_pk == bindparam("pk"))
    if by_recipient:
        stmt = stmt.where(TraceRow.recipient.in_(bindparam("rcpts", expanding=True)))
    if only_from:
        stmt = stmt.where(TraceRow.status == bindparam("old_status"))
    return stmt.values(status=bindparam("new_status"), updated_at=bindparam("now"))


_SET_STATUS = {(r, o): _set_status_stmt(r, o) for r in (False, True) for o in (False, True)}
# Built once: each statement object keeps its compiled-cache key (a new insert() per batch
# computed it again).
_INSERT_MESSAGES = insert(MessageRow)
_INSERT_TRACE = insert(TraceRow)
_INSERT_FINDINGS = insert(FindingRow)
_INSERT_VERSIONS = insert(ArtifactVersion)
_INSERT_URLS = insert(MessageUrl)
_INSERT_ATTACHMENTS = insert(MessageAttachment)
_SET_PAIR_STATUS = update(TraceRow).where(
    TraceRow.message_pk == bindparam("pk"), TraceRow.recipient == bindparam("rcpt")
).values(status=bindparam("new_status"), updated_at=bindparam("now"))


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _recipient_verdicts(result: ScanResult) -> list[tuple[str, Verdict]]:
    if result.recipients:
        return list(result.recipients.items())
    if result.envelope.rcpt_to:
        return [(r, result.verdict) for r in result.envelope.rcpt_to]
    return [("", result.verdict)]


class TraceStore:
    """Trace rows, findings and artifact versions of scanned messages."""

    def __init__(self, engine: Engine, blobs: Blobs, clock: Clock, *,
                 keep_raw: str = "quarantine") -> None:
        self.engine = engine
        self.blobs = blobs
        self.clock = clock
        self.keep_raw = keep_raw

    # -- writing -------------------------------------------------------------------------------
    def record(self, result: ScanResult, raw: bytes, *, received_at: float | None = None) -> str:
        """Record one scanned message; returns its id (``result.id``)."""
        self.record_many([Recordable(result, raw, received_at)])
        return result.id

    def record_many(self, items: Sequence[Recordable]) -> list[str]:
        """Record a batch in one transaction; blobs are durable before the rows commit."""
        if not items:
            return []
        self.write_batch(items, ())
        return [it.result.id for it in items]

    def write_batch(self, items: Sequence[Recordable],
                    changes: Sequence[tuple[str, str, Iterable[str] | None]],
                    attempts: Sequence[dict[str, Any]] = ()) -> None:
        """Record ``items``, apply the status ``changes`` and add the delivery ``attempts``
        (``Attempt.row``), in one transaction: the gateway's group commit (one commit and one
        fsync for everything a batch holds)."""
        rows = self._rows(items) if items else None
        try:
            with self.engine.begin() as conn:
                if rows is not None:
                    self._insert(conn, rows)
                if changes:
                    self._update_statuses_many(conn, changes)
                DeliveryLog.insert_rows(conn, attempts)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot record trace: {exc}") from exc

    def _rows(self, items: Sequence[Recordable]) -> tuple[list[dict[str, Any]], ...]:
        """The rows of ``items`` (their blobs written, durably, first)."""
        now = self.clock.now()
        keep: list[bytes] = []
        keep_idx: list[int] = []
        for i, item in enumerate(items):
            verdicts = _recipient_verdicts(item.result)
            if self.keep_raw == "all" or any(v.action is Action.QUARANTINE for _, v in verdicts):
                keep.append(item.raw)
                keep_idx.append(i)
        digests = dict(zip(keep_idx, self.blobs.put_many(keep), strict=True))

        messages: list[dict[str, Any]] = []
        traces: list[dict[str, Any]] = []
        findings: list[dict[str, Any]] = []
        versions: list[dict[str, Any]] = []
        urls: list[dict[str, Any]] = []
        attachments: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            res = item.result
            ts = item.received_at if item.received_at is not None else now
            msg = res.message
            sender = (res.envelope.mail_from or "").lower()
            from_addr = msg.from_addr.addr.lower() if msg.from_addr else ""
            from_text = (msg.first_header("from") or from_addr)[:512]
            v = res.verdict
            messages.append({
                "id": res.id,
                "received_at": ts,
                "mail_from": res.envelope.mail_from,
                "rcpt_to": _dumps(list(res.envelope.rcpt_to)),
                "client_ip": res.envelope.client_ip,
                "helo": res.envelope.helo,
                "from_header": msg.first_header("from") or from_addr,
                "reply_to_header": msg.first_header("reply-to")[:10000],
                "to_header": msg.first_header("to")[:10000],
                "subject": msg.subject,
                "message_id_header": msg.message_id,
                "msgid_key": message_id_key(msg.message_id),
                "date_header": msg.date[:255],
                "size": len(item.raw),
                "blob_sha256": digests.get(i),
                "category": v.category.value,
                "action": v.action.value,
                "score": float(v.score),
                "decided_by": v.decided_by.value,
                "explanation": v.explanation,
                "auth_json": _dumps(res.auth.to_dict() if res.auth else None),
                "verdict_json": _dumps(v.to_dict()),
                "raw_deleted_at": None,
            })
            for rcpt, rv in _recipient_verdicts(res):
                traces.append({
                    "message_pk": res.id,
                    "recipient": rcpt.lower(),
                    "received_at": ts,
                    "mail_from": sender,
                    "from_addr": from_addr,
                    "from_text": from_text,
                    "subject": msg.subject,
                    "category": rv.category.value,
                    "action": rv.action.value,
                    "score": float(rv.score),
                    "decided_by": rv.decided_by.value,
                    "policy": rv.policy,
                    "verdict_json": _dumps(rv.to_dict()),
                    "status": status_for(rv.action),
                    "updated_at": now,
                })
            merged: dict[str, str] = {}
            for f in res.findings:
                findings.append({
                    "message_pk": res.id,
                    "code": f.code,
                    "weight": float(f.weight),
                    "family": f.category,
                    "detector": f.detector,
                    "artifact": f.artifact,
                    "version": f.version,
                    "state": f.state.value,
                    "description": f.description,
                    "evidence_json": _dumps(list(f.evidence)),
                })
                if f.artifact:
                    merged.setdefault(f.artifact, f.version)
            merged.update(v.versions)
            merged.update(res.versions)
            versions.extend(
                {"message_pk": res.id, "artifact": a, "version": ver} for a, ver in merged.items()
            )
            urls.extend(url_rows(res.id, msg))
            attachments.extend(attachment_rows(res.id, msg))
        return messages, traces, findings, versions, urls, attachments

    @staticmethod
    def _insert(conn: Connection, rows: tuple[list[dict[str, Any]], ...]) -> None:
        messages, traces, findings, versions, urls, attachments = rows
        conn.execute(_INSERT_MESSAGES, messages)
        conn.execute(_INSERT_TRACE, traces)
        if findings:
            conn.execute(_INSERT_FINDINGS, findings)
        if versions:
            conn.execute(_INSERT_VERSIONS, versions)
        if urls:
            conn.execute(_INSERT_URLS, urls)
        if attachments:
            conn.execute(_INSERT_ATTACHMENTS, attachments)

    def set_status(self, message: str, status: str, recipients: Iterable[str] | None = None,
                   *, only_from: str | None = None) -> int:
        """Update the delivery status of a message's recipients (all when ``None``)."""
        return self.set_statuses([(message, status, recipients)], only_from=only_from)

    def set_statuses(self, changes: Sequence[tuple[str, str, Iterable[str] | None]],
                     *, only_from: str | None = None) -> int:
        """Several ``(message, status, recipients)`` updates in one transaction (one commit,
        one fsync: the gateway batches the statuses of concurrent messages this way)."""
        with self.engine.begin() as conn:
            return self._update_statuses(conn, changes, only_from)

    def _update_statuses(self, conn: Connection,
                         changes: Sequence[tuple[str, str, Iterable[str] | None]],
                         only_from: str | None) -> int:
        for _, status, _ in changes:
            if status not in STATUSES:
                raise StoreError(f"unknown status {status!r}")
        now = self.clock.now()
        count = 0
        for message, status, recipients in changes:
            params: dict[str, Any] = {"pk": message, "new_status": status, "now": now}
            if recipients is not None:
                params["rcpts"] = [r.lower() for r in recipients]
                if not params["rcpts"]:
                    continue
            if only_from is not None:
                params["old_status"] = only_from
            stmt = _SET_STATUS[recipients is not None, only_from is not None]
            count += conn.execute(stmt, params).rowcount
        return count

    def _update_statuses_many(self, conn: Connection,
                              changes: Sequence[tuple[str, str, Iterable[str] | None]]) -> None:
        """``_update_statuses`` for a writer batch: when every change names its recipients
        (the gateway's case), one executemany over (message, recipient) pairs in order, instead
        of one statement per change; otherwise change by change, in order."""
        if any(recipients is None for _, _, recipients in changes):
            self._update_statuses(conn, changes, None)
            return
        for _, status, _ in changes:
            if status not in STATUSES:
                raise StoreError(f"unknown status {status!r}")
        now = self.clock.now()
        pairs = [{"pk": message, "rcpt": r.lower(), "new_status": status, "now": now}
                 for message, status, recipients in changes for r in recipients or ()]
        if pairs:
            conn.execute(_SET_PAIR_STATUS, pairs)

    # -- reading -------------------------------------------------------------------------------
    def search(self, query: TraceQuery, *, cursor: str | None = None, limit: int = 50,
               sort: str = "received", descending: bool = True) -> Page:
        """One page of ``query`` in ``sort`` order (ties broken by row id), after or before
        the position ``cursor`` names (the page's ``next_cursor`` or ``prev_cursor``)."""
        limit = max(1, min(limit, 1000))
        col = SORTS[check_sort(sort)]
        pos = decode_position(cursor, sort, descending)
        forward = pos is None or pos.forward
        stmt = select(TraceRow).where(*query.conditions())
        if pos is not None:
            stmt = stmt.where(pos.condition())
        # walking back means reading the rows before the position in reverse, then turning
        # the page around
        towards_smaller = descending == forward
        order = (col.desc(), TraceRow.id.desc()) if towards_smaller else (col.asc(),
                                                                         TraceRow.id.asc())
        stmt = stmt.order_by(*order).limit(limit + 1)
        with read_only(self.engine) as conn:
            rows = conn.execute(stmt).all()
        more = len(rows) > limit
        items = tuple(_trace_record(r) for r in rows[:limit])
        if not forward:
            items = items[::-1]
        if not items:
            return Page(items=())

        def at(rec: TraceRecord, fwd: bool) -> str:
            value = getattr(rec, _FIELD_OF_SORT[sort])
            return encode_position(Position(sort, descending, value, rec.id, fwd))

        has_next = more if forward else True
        has_prev = (pos is not None) if forward else more
        return Page(items=items, next_cursor=at(items[-1], True) if has_next else None,
                    prev_cursor=at(items[0], False) if has_prev else None)

    def iterate(self, query: TraceQuery, *, sort: str = "received", descending: bool = True,
                page_size: int = 500) -> Iterator[TraceRecord]:
        """Every row of ``query`` in order, read a page at a time (for exports: the whole
        result is never held in memory)."""
        cursor: str | None = None
        while True:
            page = self.search(query, cursor=cursor, limit=page_size, sort=sort,
                               descending=descending)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def count(self, query: TraceQuery) -> tuple[int, int]:
        """(recipients, distinct messages) matching ``query``."""
        stmt = select(func.count(), func.count(func.distinct(TraceRow.message_pk))).where(
            *query.conditions()
        )
        with read_only(self.engine) as conn:
            n, m = conn.execute(stmt).one()
        return int(n), int(m)

    def statuses(self, message: str) -> dict[str, str]:
        """Delivery status per recipient of one message ({} when unknown)."""
        return self.statuses_many([message])[message]

    def statuses_many(self, messages: Sequence[str]) -> dict[str, dict[str, str]]:
        """Delivery status per recipient of several messages in one indexed query (the gateway
        asks this for every message it takes, to recognise retries)."""
        found: dict[str, dict[str, str]] = {m: {} for m in messages}
        if messages:
            with read_only(self.engine) as conn:
                for pk, rcpt, status in conn.execute(_STATUSES_OF, {"pks": list(found)}):
                    found[pk][rcpt] = status
        return found

    def rows_of(self, messages: Sequence[str]) -> dict[tuple[str, str], TraceRecord]:
        """The trace rows of several messages, by (message, recipient), in one query."""
        found: dict[tuple[str, str], TraceRecord] = {}
        wanted = list(dict.fromkeys(messages))
        with read_only(self.engine) as conn:
            for i in range(0, len(wanted), 500):
                stmt = select(TraceRow).where(TraceRow.message_pk.in_(wanted[i:i + 500]))
                for row in conn.execute(stmt):
                    rec = _trace_record(row)
                    found[rec.message, rec.recipient] = rec
        return found

    def refs_starting(self, prefix: str, limit: int = 2) -> list[str]:
        """Message references equal to ``prefix``, else beginning with it (at most ``limit``):
        an administrator may type a reference shortened as a narrow terminal shows it."""
        with read_only(self.engine) as conn:
            exact = conn.execute(select(MessageRow.id).where(MessageRow.id == prefix)).first()
            if exact is not None:
                return [exact.id]
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = conn.execute(select(MessageRow.id)
                                .where(MessageRow.id.like(escaped + "%", escape="\\"))
                                .order_by(MessageRow.id).limit(limit)).scalars().all()
        return list(rows)

    def get(self, message: str) -> MessageRecord | None:
        with read_only(self.engine) as conn:
            row = conn.execute(select(MessageRow).where(MessageRow.id == message)).first()
            if row is None:
                return None
            traces = conn.execute(
                select(TraceRow).where(TraceRow.message_pk == message).order_by(TraceRow.id)
            ).all()
            finds = conn.execute(
                select(FindingRow).where(FindingRow.message_pk == message).order_by(FindingRow.id)
            ).all()
            vers = conn.execute(
                select(ArtifactVersion.artifact, ArtifactVersion.version).where(
                    ArtifactVersion.message_pk == message
                )
            ).all()
            holds = conn.execute(
                select(Hold.name)
                .join(HoldMember, HoldMember.hold_id == Hold.id)
                .where(HoldMember.message_pk == message, Hold.released_at.is_(None))
            ).scalars().all()
        return MessageRecord(
            id=row.id,
            received_at=row.received_at,
            mail_from=row.mail_from,
            rcpt_to=tuple(json.loads(row.rcpt_to or "[]")),
            client_ip=row.client_ip,
            helo=row.helo,
            from_header=row.from_header,
            to_header=row.to_header,
            subject=row.subject,
            message_id_header=row.message_id_header,
            date_header=row.date_header,
            size=row.size,
            blob_sha256=row.blob_sha256,
            category=row.category,
            action=row.action,
            score=row.score,
            decided_by=row.decided_by,
            explanation=row.explanation,
            auth=json.loads(row.auth_json),
            verdict=json.loads(row.verdict_json),
            findings=tuple(_finding_dict(f) for f in finds),
            versions={a: v for a, v in vers},
            recipients=tuple(_trace_record(t) for t in traces),
            holds=tuple(holds),
            raw_deleted_at=row.raw_deleted_at,
            reply_to_header=row.reply_to_header,
        )

    def raw(self, message: str) -> bytes:
        """The original bytes of a message, as received."""
        with read_only(self.engine) as conn:
            row = conn.execute(
                select(MessageRow.blob_sha256, MessageRow.raw_deleted_at).where(
                    MessageRow.id == message
                )
            ).first()
        if row is None:
            raise StoreError(f"no message {message}")
        if row.blob_sha256 is None or row.raw_deleted_at is not None:
            raise StoreError(f"the original of message {message} is not kept")
        return self.blobs.get(row.blob_sha256)


_FIELD_OF_SORT = {"received": "received_at", "sender": "from_addr", "recipient": "recipient",
                  "subject": "subject", "category": "category", "action": "action",
                  "status": "status", "score": "score"}


def _trace_record(r: Any) -> TraceRecord:
    return TraceRecord(
        id=r.id, message=r.message_pk, recipient=r.recipient, received_at=r.received_at,
        mail_from=r.mail_from, from_addr=r.from_addr, from_text=r.from_text,
        subject=r.subject, category=r.category,
        action=r.action, score=r.score, decided_by=r.decided_by, policy=r.policy,
        status=r.status, updated_at=r.updated_at,
    )


def _finding_dict(f: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": f.code,
        "weight": f.weight,
        "category": f.family,
        "detector": f.detector,
        "evidence": json.loads(f.evidence_json),
        "state": f.state,
    }
    if f.artifact:
        out["artifact"] = f.artifact
        out["version"] = f.version
    if f.description:
        out["description"] = f.description
    return out
