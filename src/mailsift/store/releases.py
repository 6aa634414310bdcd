"""The release ledger: one row per (message, recipient), claimed before sending.

States::

    (none) --claim--> claimed --250--> sent            (final: never claimed again)
                         |--4xx/5xx, refused, no connection--> failed --claim--> claimed ...
                         |--lost during DATA, or lease expired--> uncertain   (final by default)

The unique key (message, recipient) plus "insert, or update only from ``failed``" inside one
transaction makes a claim atomic on SQLite (``BEGIN IMMEDIATE``) and PostgreSQL (row locks), so
two releasers racing for the same recipient cannot both win. ``uncertain`` marks the window
between handing the message over and recording the 250: it may or may not have been delivered,
so by default it is *not* sent again (at-most-once); ``reclaim_uncertain`` re-sends it with the
same ``release_id`` for operators who choose at-least-once and dedupe on the
``X-Mailsift-Release-Id`` header.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, and_, bindparam, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from mailsift.core.protocols import Clock
from mailsift.store.db import read_only
from mailsift.store.models import ReleaseRow, TraceRow

__all__ = ["RELEASE_STATES", "Claim", "ReleaseLedger"]

RELEASE_STATES = ("claimed", "sent", "failed", "uncertain")


@dataclass(frozen=True, slots=True)
class Claim:
    """Recipients of one message this releaser now owns, sent in one SMTP transaction."""

    message: str
    release_id: str
    recipients: tuple[str, ...]


def new_release_id() -> str:
    return uuid.uuid4().hex


class ReleaseLedger:
    def __init__(self, engine: Engine, clock: Clock, *, lease_seconds: float = 300.0) -> None:
        self.engine = engine
        self.clock = clock
        self.lease_seconds = lease_seconds
        dialect = engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    def expire_leases(self) -> int:
        """Claims never confirmed within their lease become ``uncertain``."""
        with self.engine.begin() as conn:
            return conn.execute(
                update(ReleaseRow)
                .where(ReleaseRow.state == "claimed", ReleaseRow.lease_until < self.clock.now())
                .values(state="uncertain", reply="lease expired before the 250 was recorded")
            ).rowcount

    def claim(self, wanted: Sequence[tuple[str, Sequence[str]]], *, actor: str,
              job_id: str | None = None, reclaim_uncertain: bool = False) -> list[Claim]:
        """Atomically claim (message, recipients) pairs; returns what this caller now owns.

        Pairs already ``sent`` (or ``uncertain``, unless ``reclaim_uncertain``) or claimed by
        someone else within their lease are left out.
        """
        now = self.clock.now()
        lease = now + self.lease_seconds
        fresh_ids = {m: new_release_id() for m, _ in wanted}
        rows = [
            {
                "message_pk": m, "recipient": r.lower(), "state": "claimed",
                "release_id": fresh_ids[m], "job_id": job_id, "actor": actor,
                "claimed_at": now, "lease_until": lease, "sent_at": None, "attempts": 1,
                "reply": "",
            }
            for m, rcpts in wanted for r in dict.fromkeys(rcpts)
        ]
        if not rows:
            return []
        owned: dict[tuple[str, str], str] = {}
        with self.engine.begin() as conn:
            stmt = (
                self._insert(ReleaseRow)
                .on_conflict_do_nothing(index_elements=["message_pk", "recipient"])
                .returning(ReleaseRow.message_pk, ReleaseRow.recipient, ReleaseRow.release_id)
            )
            for i in range(0, len(rows), 500):
                for m, r, rid in conn.execute(stmt, rows[i:i + 500]).all():
                    owned[(m, r)] = rid
            rest = [(row["message_pk"], row["recipient"]) for row in rows
                    if (row["message_pk"], row["recipient"]) not in owned]
            retry_states = ["failed", "uncertain"] if reclaim_uncertain else ["failed"]
            for i in range(0, len(rest), 500):
                chunk = rest[i:i + 500]
                found = conn.execute(
                    select(ReleaseRow.message_pk, ReleaseRow.recipient, ReleaseRow.state,
                           ReleaseRow.release_id)
                    .where(tuple_(ReleaseRow.message_pk, ReleaseRow.recipient).in_(chunk))
                    .where(ReleaseRow.state.in_(retry_states))
                ).all()
                for m, r, state, old_id in found:
                    # An uncertain send keeps its id so the next hop can drop a duplicate; a
                    # failed one was never accepted, so a new attempt gets a new id.
                    rid = old_id if state == "uncertain" else fresh_ids[m]
                    got = conn.execute(
                        update(ReleaseRow)
                        .where(ReleaseRow.message_pk == m, ReleaseRow.recipient == r,
                               ReleaseRow.state == state)
                        .values(state="claimed", release_id=rid, job_id=job_id, actor=actor,
                                claimed_at=now, lease_until=lease,
                                attempts=ReleaseRow.attempts + 1)
                    ).rowcount
                    if got:
                        owned[(m, r)] = rid
        grouped: dict[tuple[str, str], list[str]] = {}
        for (m, r), rid in owned.items():
            grouped.setdefault((m, rid), []).append(r)
        return [Claim(m, rid, tuple(rs)) for (m, rid), rs in grouped.items()]

    def _mark(self, claim: Claim, recipients: Iterable[str], state: str, reply: str,
              from_states: tuple[str, ...]) -> int:
        rcpts = [r.lower() for r in recipients]
        if not rcpts:
            return 0
        now = self.clock.now()
        values: dict[str, object] = {"state": state, "reply": reply[:2000]}
        if state == "sent":
            values["sent_at"] = now
        with self.engine.begin() as conn:
            n = conn.execute(
                update(ReleaseRow)
                .where(ReleaseRow.message_pk == claim.message,
                       ReleaseRow.recipient.in_(rcpts),
                       ReleaseRow.release_id == claim.release_id,
                       ReleaseRow.state.in_(from_states))
                .values(**values)
            ).rowcount
            if state == "sent":
                conn.execute(
                    update(TraceRow)
                    .where(TraceRow.message_pk == claim.message, TraceRow.recipient.in_(rcpts))
                    .values(status="released", updated_at=now)
                )
        return n

    def mark_sent(self, claim: Claim, recipients: Iterable[str], reply: str = "") -> int:
        # "uncertain" too: if our lease ran out but the 250 did arrive, the truth is "sent".
        return self._mark(claim, recipients, "sent", reply, ("claimed", "uncertain"))

    def mark_failed(self, claim: Claim, recipients: Iterable[str], reply: str) -> int:
        return self._mark(claim, recipients, "failed", reply, ("claimed",))

    def mark_uncertain(self, claim: Claim, recipients: Iterable[str], reply: str) -> int:
        return self._mark(claim, recipients, "uncertain", reply, ("claimed",))

    def mark_sent_many(self, done: Sequence[tuple[Claim, Sequence[str], str]]) -> None:
        """Record many 250s in one transaction (bulk release)."""
        params = [
            {"m": c.message, "r": r.lower(), "rid": c.release_id, "rp": reply[:2000]}
            for c, rcpts, reply in done for r in rcpts
        ]
        if not params:
            return
        now = self.clock.now()
        with self.engine.begin() as conn:
            conn.execute(
                update(ReleaseRow)
                .where(and_(ReleaseRow.message_pk == bindparam("m"),
                            ReleaseRow.recipient == bindparam("r"),
                            ReleaseRow.release_id == bindparam("rid"),
                            # no IN (...): expanding parameters cannot be executemany'd
                            or_(ReleaseRow.state == "claimed",
                                ReleaseRow.state == "uncertain")))
                .values(state="sent", sent_at=now, reply=bindparam("rp"))
                .execution_options(synchronize_session=False),
                params,
            )
            conn.execute(
                update(TraceRow)
                .where(TraceRow.message_pk == bindparam("m"),
                       TraceRow.recipient == bindparam("r"))
                .values(status="released", updated_at=now)
                .execution_options(synchronize_session=False),
                [{"m": p["m"], "r": p["r"]} for p in params],
            )

    def states(self, message: str) -> dict[str, tuple[str, str]]:
        """recipient -> (state, release_id) for one message."""
        with read_only(self.engine) as conn:
            rows = conn.execute(
                select(ReleaseRow.recipient, ReleaseRow.state, ReleaseRow.release_id).where(
                    ReleaseRow.message_pk == message
                )
            ).all()
        return {r: (s, rid) for r, s, rid in rows}

    def history(self, message: str) -> list[dict[str, object]]:
        """Every release of one message's copies, as the ledger keeps them: who, when,
        state, attempts and the next hop's reply."""
        cols = (ReleaseRow.recipient, ReleaseRow.state, ReleaseRow.actor, ReleaseRow.job_id,
                ReleaseRow.claimed_at, ReleaseRow.sent_at, ReleaseRow.attempts,
                ReleaseRow.reply, ReleaseRow.release_id)
        with read_only(self.engine) as conn:
            rows = conn.execute(select(*cols).where(ReleaseRow.message_pk == message)
                                .order_by(ReleaseRow.claimed_at, ReleaseRow.id)).all()
        return [dict(r._mapping) for r in rows]

    def notes(self, message: str) -> dict[str, str]:
        """recipient -> why, for the recipients of one message whose release failed or is
        uncertain (the reply or error recorded with that state)."""
        with read_only(self.engine) as conn:
            rows = conn.execute(
                select(ReleaseRow.recipient, ReleaseRow.reply).where(
                    ReleaseRow.message_pk == message,
                    ReleaseRow.state.in_(["failed", "uncertain"]))
            ).all()
        return {r: reply for r, reply in rows}

    def job_counts(self, job_id: str) -> dict[str, int]:
        from sqlalchemy import func

        with read_only(self.engine) as conn:
            rows = conn.execute(
                select(ReleaseRow.state, func.count())
                .where(ReleaseRow.job_id == job_id)
                .group_by(ReleaseRow.state)
            ).all()
        return {s: int(n) for s, n in rows}
