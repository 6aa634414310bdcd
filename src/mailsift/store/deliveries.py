"""Delivery attempts: what the next hop answered for each recipient, each time we tried.

The trace row keeps a recipient's current status; this table keeps how it got there (the
next hop's reply with its code, whether it was retried and when the next try is due), so an
administrator can tell why a copy failed. Written by the delivery path through the recorder's
writer thread, in the same transaction as the status change it explains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Float, ForeignKey, Index, Integer, String, Text, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from mailsift.store.base import ADDR, Base, BigId
from mailsift.store.db import read_only

__all__ = ["Attempt", "AttemptRow", "DeliveryLog"]

_REPLY_LEN = 2000


class AttemptRow(Base):
    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_message", "message_pk", "recipient", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_pk: Mapped[str] = mapped_column(
        String(64), ForeignKey("messages.id", ondelete="CASCADE"))
    recipient: Mapped[str] = mapped_column(String(ADDR))
    at: Mapped[float] = mapped_column(Float)
    #: delivered, deferred (will be retried), failed or bounced (refused for good)
    outcome: Mapped[str] = mapped_column(String(16))
    reply: Mapped[str] = mapped_column(Text, default="")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    next_try_at: Mapped[float | None] = mapped_column(Float)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt of one recipient's copy."""

    recipient: str
    at: float
    outcome: str
    reply: str = ""
    attempt: int = 1
    next_try_at: float | None = None

    @property
    def code(self) -> int | None:
        """The SMTP reply code, when the reply starts with one."""
        head = self.reply[:3]
        return int(head) if len(head) == 3 and head.isdigit() else None

    @property
    def text(self) -> str:
        return self.reply[4:] if self.code is not None else self.reply

    def row(self, message: str) -> dict[str, Any]:
        return {"message_pk": message, "recipient": self.recipient.lower(), "at": self.at,
                "outcome": self.outcome, "reply": self.reply[:_REPLY_LEN],
                "attempt": self.attempt, "next_try_at": self.next_try_at}

    def to_dict(self) -> dict[str, Any]:
        return {"recipient": self.recipient, "at": self.at, "outcome": self.outcome,
                "code": self.code, "reply": self.reply, "attempt": self.attempt,
                "next_try_at": self.next_try_at}


_INSERT = insert(AttemptRow)


class DeliveryLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, message: str, attempts: Sequence[Attempt]) -> None:
        if attempts:
            with self.engine.begin() as conn:
                conn.execute(_INSERT, [a.row(message) for a in attempts])

    @staticmethod
    def insert_rows(conn: Any, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            conn.execute(_INSERT, list(rows))

    def of(self, message: str) -> list[Attempt]:
        """Every attempt of ``message``, oldest first."""
        stmt = (select(AttemptRow).where(AttemptRow.message_pk == message)
                .order_by(AttemptRow.at, AttemptRow.id))
        with read_only(self.engine) as conn:
            rows = conn.execute(stmt).all()
        return [Attempt(r.recipient, r.at, r.outcome, r.reply, r.attempt, r.next_try_at)
                for r in rows]
