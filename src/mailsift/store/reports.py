"""User reports: someone says a scanned message was misjudged (the rows; the rules are in
``services.reports``).

A report names the traced message (``message_pk``, the trace id a delivered copy carries in its
``X-Mailsift-Ref`` header), who reported it, the reporter's mailbox when a recipient, a label
(``phish`` or ``spam``: a miss; ``ham``: "not junk", a false positive), an optional comment, and
a copy of what was decided at scan time (category, action, the deciding finding codes, subject,
sender, receive time). ``message_pk`` is deliberately *not* a foreign key: the retention purge
deletes messages, and a report must stay readable after its message has gone.

One report per (message, reporter, label): reporting twice returns the first report. The insert
is ``ON CONFLICT DO NOTHING`` on that unique key, so two clicks racing on two nodes still leave
one row. Triage moves a report to ``confirmed`` or ``rejected`` (and may correct an earlier
triage), recording who, when and a note.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Float,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from mailsift.core.errors import StoreError
from mailsift.core.protocols import Clock
from mailsift.store.base import ADDR, Base, BigId
from mailsift.store.db import read_only
from mailsift.store.query import decode_cursor, encode_cursor

__all__ = [
    "LABELS",
    "MAX_COMMENT",
    "REPORT_STATES",
    "ReportInfo",
    "ReportPage",
    "ReportRow",
    "ReportStore",
]

#: ``phish``/``spam``: delivered but bad (a miss); ``ham``: filtered but legitimate ("not junk").
LABELS = ("phish", "spam", "ham")
REPORT_STATES = ("new", "confirmed", "rejected")
MAX_COMMENT = 2000


class ReportRow(Base):
    """One user report of one message (see the module docstring)."""

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("message_pk", "reporter", "label",
                         name="uq_reports_message_reporter_label"),
        Index("ix_reports_time", "created_at", "id"),
        Index("ix_reports_state", "state", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_pk: Mapped[str] = mapped_column(String(64))  # no FK: outlives the retention purge
    reporter: Mapped[str] = mapped_column(String(ADDR))
    mailbox: Mapped[str | None] = mapped_column(String(ADDR))
    label: Mapped[str] = mapped_column(String(8))
    comment: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    reasons_json: Mapped[str] = mapped_column(Text, default="[]")
    subject: Mapped[str] = mapped_column(Text, default="")
    sender: Mapped[str] = mapped_column(String(ADDR), default="")
    received_at: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    triaged_by: Mapped[str | None] = mapped_column(String(ADDR))
    triaged_at: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True, slots=True)
class ReportInfo:
    id: int
    message: str
    reporter: str
    mailbox: str | None
    label: str
    comment: str
    category: str
    action: str
    reasons: tuple[str, ...]
    subject: str
    sender: str
    received_at: float
    created_at: float
    state: str
    triaged_by: str | None
    triaged_at: float | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "message": self.message, "reporter": self.reporter,
            "mailbox": self.mailbox, "label": self.label, "comment": self.comment,
            "verdict": {"category": self.category, "action": self.action,
                        "reasons": list(self.reasons)},
            "subject": self.subject, "sender": self.sender, "received_at": self.received_at,
            "created_at": self.created_at, "state": self.state, "triaged_by": self.triaged_by,
            "triaged_at": self.triaged_at, "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class ReportPage:
    """Reports newest first; ``next_cursor`` is ``None`` on the last page."""

    items: tuple[ReportInfo, ...]
    next_cursor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"items": [i.to_dict() for i in self.items], "next_cursor": self.next_cursor}


def _filters(*, state: str | None, label: str | None, since: float | None,
             reporter: str | None = None, mailbox: str | None = None,
             message: str | None = None) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if state:
        out.append(ReportRow.state == state)
    if label:
        out.append(ReportRow.label == label)
    if since is not None:
        out.append(ReportRow.created_at >= since)
    if reporter:
        out.append(ReportRow.reporter == reporter)
    if mailbox:
        out.append(ReportRow.mailbox == mailbox.lower())
    if message:
        out.append(ReportRow.message_pk == message)
    return out


class ReportStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def add(self, *, message: str, reporter: str, label: str, mailbox: str | None = None,
            comment: str = "", category: str, action: str, reasons: Sequence[str] = (),
            subject: str = "", sender: str = "", received_at: float
            ) -> tuple[ReportInfo, bool]:
        """Insert a report; ``(report, True)`` when new, ``(the existing one, False)`` when
        the reporter already reported this message with this label."""
        if label not in LABELS:
            raise StoreError(f"invalid label {label!r} (one of {', '.join(LABELS)})")
        row = {
            "message_pk": message, "reporter": reporter[:ADDR],
            "mailbox": mailbox.lower() if mailbox else None, "label": label,
            "comment": comment[:MAX_COMMENT], "category": category, "action": action,
            "reasons_json": json.dumps(list(reasons)[:50]), "subject": subject[:998],
            "sender": sender[:ADDR], "received_at": received_at,
            "created_at": self.clock.now(), "state": "new", "triaged_by": None,
            "triaged_at": None, "note": "",
        }
        stmt = (self._insert(ReportRow).values(row)
                .on_conflict_do_nothing(index_elements=["message_pk", "reporter", "label"])
                .returning(ReportRow.id))
        with self.engine.begin() as conn:
            new_id = conn.execute(stmt).scalar()
            created = new_id is not None
            if not created:
                new_id = conn.execute(select(ReportRow.id).where(
                    ReportRow.message_pk == message, ReportRow.reporter == row["reporter"],
                    ReportRow.label == label)).scalar_one()
        assert new_id is not None
        got = self.get(int(new_id))
        assert got is not None
        return got, created

    def get(self, report_id: int) -> ReportInfo | None:
        with read_only(self.engine) as conn:
            row = conn.execute(select(ReportRow).where(ReportRow.id == report_id)).first()
        return _report(row) if row else None

    def list(self, *, state: str | None = None, label: str | None = None,
             since: float | None = None, reporter: str | None = None,
             mailbox: str | None = None, message: str | None = None,
             cursor: str | None = None, limit: int = 50) -> ReportPage:
        """Newest first, keyset-paged on (created_at, id) like the trace."""
        limit = max(1, min(limit, 1000))
        stmt = select(ReportRow).where(*_filters(state=state, label=label, since=since,
                                                 reporter=reporter, mailbox=mailbox,
                                                 message=message))
        after = decode_cursor(cursor)
        if after is not None:
            stmt = stmt.where(tuple_(ReportRow.created_at, ReportRow.id) < tuple_(*after))
        stmt = stmt.order_by(ReportRow.created_at.desc(), ReportRow.id.desc()).limit(limit + 1)
        with read_only(self.engine) as conn:
            rows = conn.execute(stmt).all()
        items = tuple(_report(r) for r in rows[:limit])
        nxt = encode_cursor((items[-1].created_at, items[-1].id)) if len(rows) > limit else None
        return ReportPage(items, nxt)

    def count(self, *, state: str | None = None, label: str | None = None) -> int:
        stmt = select(func.count()).select_from(ReportRow).where(
            *_filters(state=state, label=label, since=None))
        with read_only(self.engine) as conn:
            return int(conn.execute(stmt).scalar_one())

    def messages(self, *, label: str, state: str | None = "confirmed",
                 since: float | None = None) -> tuple[str, ...]:
        """The distinct messages reported with ``label`` (in ``state``), most recently
        reported first: the corpus behind ``reports export`` and the gate's reported ham."""
        last = func.max(ReportRow.created_at)
        stmt = (select(ReportRow.message_pk, last)
                .where(*_filters(state=state, label=label, since=since))
                .group_by(ReportRow.message_pk)
                .order_by(last.desc(), ReportRow.message_pk))
        with read_only(self.engine) as conn:
            return tuple(str(r[0]) for r in conn.execute(stmt).all())

    def set_state(self, report_id: int, state: str, *, actor: str,
                  note: str = "") -> tuple[ReportInfo, str]:
        """Triage: move a report to ``confirmed`` or ``rejected`` (an earlier triage may be
        corrected). Returns the report and the state it had before."""
        if state not in ("confirmed", "rejected"):
            raise StoreError(f"invalid triage state {state!r} (confirmed or rejected)")
        with self.engine.begin() as conn:
            before = conn.execute(
                select(ReportRow.state).where(ReportRow.id == report_id)).scalar()
            if before is None:
                raise StoreError(f"no report {report_id}")
            conn.execute(update(ReportRow).where(ReportRow.id == report_id).values(
                state=state, triaged_by=actor[:ADDR], triaged_at=self.clock.now(),
                note=note[:MAX_COMMENT]))
        got = self.get(report_id)
        assert got is not None
        return got, str(before)


def _report(r: Any) -> ReportInfo:
    return ReportInfo(
        id=r.id, message=r.message_pk, reporter=r.reporter, mailbox=r.mailbox, label=r.label,
        comment=r.comment, category=r.category, action=r.action,
        reasons=tuple(json.loads(r.reasons_json or "[]")), subject=r.subject, sender=r.sender,
        received_at=r.received_at, created_at=r.created_at, state=r.state,
        triaged_by=r.triaged_by, triaged_at=r.triaged_at, note=r.note,
    )
