"""End-user quarantine rows: digest claims, recipients' digest preferences, used action links.

``digest_runs`` is the claim table that makes a digest go out exactly once per recipient and
period however many nodes run the schedule: a node inserts ``(recipient, period)`` before it
sends (the unique key lets one insert win), marks the row ``sent`` with the time the digest
covered up to (``until``, the recipient's next watermark), or ``failed`` (refused by the relay:
claimable again). A claim whose node died before confirming is turned ``uncertain`` after its
lease and is not sent again: the recipient's watermark did not move, so those messages are
listed in the next period's digest instead of twice.

``action_link_uses`` is the single-use ledger of signed action links (``services.links``): a
link is honoured only by the request that inserts its id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    Engine,
    Float,
    Integer,
    String,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from mailsift.core.protocols import Clock
from mailsift.store.base import ADDR, Base
from mailsift.store.db import read_only

__all__ = ["DigestPrefRow", "DigestRunRow", "EndUserStore", "LinkUseRow", "Watermarks"]


class DigestRunRow(Base):
    __tablename__ = "digest_runs"

    recipient: Mapped[str] = mapped_column(String(ADDR), primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True)  # claimed|sent|failed|uncertain
    node: Mapped[str] = mapped_column(String(255), default="")
    claimed_at: Mapped[float] = mapped_column(Float)
    lease_until: Mapped[float] = mapped_column(Float)
    until: Mapped[float] = mapped_column(Float)  # newest message time the digest covers
    items: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[float | None] = mapped_column(Float)
    reply: Mapped[str] = mapped_column(String(512), default="")


class DigestPrefRow(Base):
    __tablename__ = "digest_prefs"

    recipient: Mapped[str] = mapped_column(String(ADDR), primary_key=True)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str] = mapped_column(String(16), default="")
    updated_at: Mapped[float] = mapped_column(Float)


class LinkUseRow(Base):
    __tablename__ = "action_link_uses"

    link_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    message_pk: Mapped[str] = mapped_column(String(64), default="")
    recipient: Mapped[str] = mapped_column(String(ADDR))
    used_at: Mapped[float] = mapped_column(Float, index=True)
    client: Mapped[str] = mapped_column(String(64), default="")


@dataclass(frozen=True, slots=True)
class Watermarks:
    """Per recipient, the newest message time its last sent digest covered."""

    until: dict[str, float]

    def of(self, recipient: str, default: float) -> float:
        return self.until.get(recipient, default)


class EndUserStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    # -- digests --------------------------------------------------------------------------------
    def expire_claims(self) -> int:
        """Claims whose node never confirmed become ``uncertain`` (never sent again)."""
        with self.engine.begin() as conn:
            return int(conn.execute(
                update(DigestRunRow)
                .where(DigestRunRow.state == "claimed",
                       DigestRunRow.lease_until < self.clock.now())
                .values(state="uncertain")
            ).rowcount or 0)

    def watermarks(self, recipients: Iterable[str] | None = None) -> Watermarks:
        stmt = (select(DigestRunRow.recipient, func.max(DigestRunRow.until))
                .where(DigestRunRow.state == "sent").group_by(DigestRunRow.recipient))
        wanted = sorted(set(recipients)) if recipients is not None else None
        out: dict[str, float] = {}
        with read_only(self.engine) as conn:
            if wanted is None:
                out.update({r: float(u) for r, u in conn.execute(stmt).all()})
            else:
                for i in range(0, len(wanted), 500):
                    part = stmt.where(DigestRunRow.recipient.in_(wanted[i:i + 500]))
                    out.update({r: float(u) for r, u in conn.execute(part).all()})
        return Watermarks(out)

    def claim(self, period: int, recipients: Sequence[tuple[str, float, int]], *, node: str,
              lease: float) -> set[str]:
        """Claim ``(recipient, until, items)`` for ``period``; returns the recipients won.

        A row in state ``failed`` is claimable again; every other state means someone else
        has it (or had it)."""
        now = self.clock.now()
        won: set[str] = set()
        with self.engine.begin() as conn:
            for i in range(0, len(recipients), 500):
                rows = [{"recipient": r, "period": period, "state": "claimed", "node": node,
                         "claimed_at": now, "lease_until": now + lease, "until": until,
                         "items": items, "sent_at": None, "reply": ""}
                        for r, until, items in recipients[i:i + 500]]
                stmt = (self._insert(DigestRunRow).values(rows)
                        .on_conflict_do_nothing(index_elements=["recipient", "period"])
                        .returning(DigestRunRow.recipient))
                won.update(conn.execute(stmt).scalars().all())
            retry = [r for r, _, _ in recipients if r not in won]
            for i in range(0, len(retry), 500):
                got = conn.execute(
                    update(DigestRunRow)
                    .where(DigestRunRow.period == period, DigestRunRow.state == "failed",
                           DigestRunRow.recipient.in_(retry[i:i + 500]))
                    .values(state="claimed", node=node, claimed_at=now, lease_until=now + lease)
                    .returning(DigestRunRow.recipient)
                ).scalars().all()
                won.update(got)
        return won

    def finish(self, period: int, results: Sequence[tuple[str, str, float, int, str]]) -> None:
        """Mark claims ``(recipient, state, until, items, reply)`` sent or failed."""
        if not results:
            return
        now = self.clock.now()
        stmt = (update(DigestRunRow)
                .where(DigestRunRow.recipient == bindparam("r"),
                       DigestRunRow.period == period, DigestRunRow.state == "claimed")
                .values(state=bindparam("s"), until=bindparam("u"), items=bindparam("n"),
                        reply=bindparam("reply"), sent_at=bindparam("at")))
        with self.engine.begin() as conn:  # one executemany, not one round trip per row
            conn.execute(stmt, [{"r": r, "s": state, "u": until, "n": items,
                                 "reply": reply[:500], "at": now if state == "sent" else None}
                                for r, state, until, items, reply in results])

    def runs(self, recipient: str, limit: int = 20) -> list[dict[str, object]]:
        with read_only(self.engine) as conn:
            rows = conn.execute(
                select(DigestRunRow).where(DigestRunRow.recipient == recipient.lower())
                .order_by(DigestRunRow.period.desc()).limit(limit)).all()
        return [{"period": r.period, "state": r.state, "items": r.items, "until": r.until,
                 "sent_at": r.sent_at, "node": r.node} for r in rows]

    # -- preferences ----------------------------------------------------------------------------
    def set_pref(self, recipient: str, *, opted_out: bool | None = None,
                 language: str | None = None) -> None:
        values: dict[str, object] = {"updated_at": self.clock.now()}
        if opted_out is not None:
            values["opted_out"] = opted_out
        if language is not None:
            values["language"] = language
        row = {"recipient": recipient.lower(), "opted_out": bool(opted_out),
               "language": language or "", **values}
        with self.engine.begin() as conn:
            conn.execute(self._insert(DigestPrefRow).values(row).on_conflict_do_update(
                index_elements=["recipient"], set_=values))

    def prefs(self, recipients: Iterable[str]) -> dict[str, tuple[bool, str]]:
        wanted = sorted(set(recipients))
        out: dict[str, tuple[bool, str]] = {}
        with read_only(self.engine) as conn:
            for i in range(0, len(wanted), 500):
                for r in conn.execute(select(DigestPrefRow).where(
                        DigestPrefRow.recipient.in_(wanted[i:i + 500]))).all():
                    out[r.recipient] = (bool(r.opted_out), r.language)
        return out

    # -- single-use links -----------------------------------------------------------------------
    def use_link(self, link_id: str, purpose: str, message: str, recipient: str,
                 client: str = "") -> bool:
        """True for the first use of ``link_id``; False when it was used before."""
        try:
            with self.engine.begin() as conn:
                conn.execute(self._insert(LinkUseRow).values(
                    link_id=link_id, purpose=purpose, message_pk=message,
                    recipient=recipient.lower(), used_at=self.clock.now(), client=client[:64]))
        except IntegrityError:
            return False
        return True

    def unuse_link(self, link_id: str) -> None:
        """Give a link back when its action failed before anything happened."""
        with self.engine.begin() as conn:
            conn.execute(delete(LinkUseRow).where(LinkUseRow.link_id == link_id))

    def link_used(self, link_id: str) -> bool:
        with read_only(self.engine) as conn:
            return conn.execute(select(LinkUseRow.link_id)
                                .where(LinkUseRow.link_id == link_id)).first() is not None

    def recent_link_uses(self, purpose: str, recipient: str, since: float) -> int:
        with read_only(self.engine) as conn:
            return int(conn.execute(
                select(func.count()).select_from(LinkUseRow)
                .where(LinkUseRow.purpose == purpose, LinkUseRow.recipient == recipient.lower(),
                       LinkUseRow.used_at >= since)).scalar_one())
