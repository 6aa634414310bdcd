"""Failed sign-in counters, kept in the store so every node behind one name counts together.

One row per key (``kind``, ``subject``): a username or a client address. A key counts
attempts within a fixed window that starts at its first attempt; when ``attempts`` of them fail
within the window, the key is locked for ``lockout`` seconds, doubled on each further lockout
up to ``max_lockout``, and the back-off starts again once the key has been quiet for ``forget``
seconds (or, for a username, after a successful sign-in, which deletes its row).

An attempt is counted *before* the password is checked (``begin``) and taken back only by
success: otherwise an attacker firing many guesses at once would have them all checked before
the first failure was written. While a key's window is full of attempts still in flight it is
refused as if locked. Every method is one transaction; on PostgreSQL the rows are locked
(``FOR UPDATE``, keys in a fixed order so two sign-ins never deadlock), on SQLite the
transaction is ``BEGIN IMMEDIATE`` and writers queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Float, Integer, String, delete, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from mailsift.core.protocols import Clock
from mailsift.store.base import ADDR, Base

__all__ = ["ADDRESS", "USER", "Key", "Limit", "LoginThrottle", "Refusal", "ThrottleRow"]

USER = "user"
ADDRESS = "address"


@dataclass(frozen=True, slots=True)
class Limit:
    """How many failures a key may have within ``window`` seconds, and the back-off after."""

    attempts: int
    window: float
    lockout: float
    max_lockout: float
    forget: float

    def lockout_for(self, lockouts: int) -> float:
        """The length of the ``lockouts``-th lockout (1 = the first)."""
        return float(min(self.lockout * 2 ** max(lockouts - 1, 0), self.max_lockout))


@dataclass(frozen=True, slots=True)
class Key:
    kind: str  # USER or ADDRESS
    subject: str
    limit: Limit

    @property
    def id(self) -> tuple[str, str]:
        return (self.kind, self.subject[:ADDR])


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an attempt was refused: which key, and until when."""

    kind: str
    subject: str
    until: float


class ThrottleRow(Base):
    __tablename__ = "login_throttle"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(ADDR), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)  # attempts counted in the current window
    window_start: Mapped[float] = mapped_column(Float)
    lockouts: Mapped[int] = mapped_column(Integer)  # lockouts so far: the back-off exponent
    locked_until: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float, index=True)


@dataclass(slots=True)
class _State:
    failures: int
    window_start: float
    lockouts: int
    locked_until: float

    @classmethod
    def of(cls, row: Any, limit: Limit, now: float) -> _State:
        if row is None:
            return cls(0, now, 0, 0.0)
        state = cls(row.failures, row.window_start, row.lockouts, row.locked_until)
        if state.locked_until <= now and now - row.updated_at >= limit.forget:
            state.lockouts = 0  # quiet long enough: the back-off starts again
        if now - state.window_start >= limit.window:
            state.failures, state.window_start = 0, now
        return state


class LoginThrottle:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def begin(self, keys: Sequence[Key]) -> Refusal | None:
        """Count one attempt on every key, or refuse it (counting nothing) while a key is
        locked or its window is full; the refusal that lasts longest is returned."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            rows = self._rows(conn, keys, now)
            refusals = []
            states = {}
            for key in keys:
                state = _State.of(rows.get(key.id), key.limit, now)
                if state.locked_until > now:
                    refusals.append(Refusal(key.kind, key.subject, state.locked_until))
                elif state.failures >= key.limit.attempts:
                    # attempts still in flight fill the window (or were lost with a crash)
                    refusals.append(Refusal(key.kind, key.subject,
                                            state.window_start + key.limit.window))
                states[key.id] = state
            if refusals:
                return max(refusals, key=lambda r: r.until)
            for key in keys:
                state = states[key.id]
                self._save(conn, key, state, now, failures=state.failures + 1)
        return None

    def failed(self, keys: Sequence[Key]) -> float | None:
        """The attempts ``begin`` counted failed: lock every key whose window is now full.
        Returns the longest lockout this started, if any."""
        now = self.clock.now()
        started = None
        with self.engine.begin() as conn:
            rows = self._rows(conn, keys, now)
            for key in keys:
                state = _State.of(rows.get(key.id), key.limit, now)
                # this failure counts even if a success or the window's end reset the key since
                state.failures = max(state.failures, 1)
                if state.locked_until <= now and state.failures >= key.limit.attempts:
                    state.lockouts += 1
                    state.locked_until = now + key.limit.lockout_for(state.lockouts)
                    state.failures, state.window_start = 0, now
                    started = max(started or 0.0, state.locked_until)
                self._save(conn, key, state, now, failures=state.failures)
            # forget keys that have been quiet for long: a spray of usernames leaves many rows
            oldest = now - max(k.limit.forget for k in keys) if keys else now
            conn.execute(delete(ThrottleRow).where(ThrottleRow.updated_at < oldest,
                                                   ThrottleRow.locked_until <= now))
        return started

    def succeeded(self, cleared: Sequence[Key], kept: Sequence[Key] = ()) -> None:
        """The attempt succeeded: ``cleared`` keys (the username) start afresh; ``kept`` keys
        (the address) only give back the attempt ``begin`` counted."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            for key in cleared:
                conn.execute(delete(ThrottleRow).where(ThrottleRow.kind == key.id[0],
                                                       ThrottleRow.subject == key.id[1]))
            for key in kept:
                conn.execute(update(ThrottleRow).where(
                    ThrottleRow.kind == key.id[0], ThrottleRow.subject == key.id[1],
                    ThrottleRow.failures > 0).values(failures=ThrottleRow.failures - 1,
                                                     updated_at=now))

    def clear(self, kind: str, subject: str) -> bool:
        """Forget a key (an admin set a new password); True when it had a row."""
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(ThrottleRow).where(
                ThrottleRow.kind == kind, ThrottleRow.subject == subject[:ADDR])).rowcount)

    def locked(self, kind: str) -> dict[str, float]:
        """Subjects of this kind locked now, and until when."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(ThrottleRow.subject, ThrottleRow.locked_until).where(
                ThrottleRow.kind == kind, ThrottleRow.locked_until > self.clock.now())).all()
        return {subject: float(until) for subject, until in rows}

    # -- rows -----------------------------------------------------------------------------------
    def _rows(self, conn: Connection, keys: Sequence[Key], now: float
              ) -> dict[tuple[str, str], Any]:
        ids = sorted({k.id for k in keys})
        if not ids:
            return {}
        # Create missing rows first so there is always a row to lock: two nodes counting the
        # first failure of a name at once must not both insert (or both read "no row").
        conn.execute(self._insert(ThrottleRow).on_conflict_do_nothing(
            index_elements=["kind", "subject"]), [
            {"kind": kind, "subject": subject, "failures": 0, "window_start": now,
             "lockouts": 0, "locked_until": 0.0, "updated_at": now} for kind, subject in ids])
        found = conn.execute(
            select(ThrottleRow).where(tuple_(ThrottleRow.kind, ThrottleRow.subject).in_(ids))
            .order_by(ThrottleRow.kind, ThrottleRow.subject).with_for_update()).all()
        return {(r.kind, r.subject): r for r in found}

    @staticmethod
    def _save(conn: Connection, key: Key, state: _State, now: float, *, failures: int) -> None:
        conn.execute(update(ThrottleRow).where(
            ThrottleRow.kind == key.id[0], ThrottleRow.subject == key.id[1]).values(
            failures=failures, window_start=state.window_start, lockouts=state.lockouts,
            locked_until=state.locked_until, updated_at=now))
