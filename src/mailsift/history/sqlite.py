"""Sender history persisted in a small SQLite file (stdlib ``sqlite3``, WAL).

Standalone on purpose: the shared store (``mailsift.store``) will get its own implementation of
the same protocol. Size is bounded by pruning each table to ``max_entries`` rows, oldest
``last_seen`` first, every ``prune_every`` recorded messages (pruning per insert would cost a
table scan each time).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from mailsift.history.base import Contact, Learned, SenderStats, normalise_name

__all__ = ["SqliteHistory"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hist_pair (
    sender TEXT NOT NULL, recipient TEXT NOT NULL,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (sender, recipient));
CREATE TABLE IF NOT EXISTS hist_domain_pair (
    sender TEXT NOT NULL, recipient TEXT NOT NULL,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (sender, recipient));
CREATE TABLE IF NOT EXISTS hist_sender (
    sender TEXT PRIMARY KEY, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    count INTEGER NOT NULL, recipients INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hist_domain (
    sender TEXT PRIMARY KEY, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    count INTEGER NOT NULL, recipients INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hist_name (
    name TEXT NOT NULL, sender TEXT NOT NULL, last_seen REAL NOT NULL,
    PRIMARY KEY (name, sender));
CREATE TABLE IF NOT EXISTS hist_seen (
    sender TEXT PRIMARY KEY, first_seen REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS hist_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS hist_pair_seen ON hist_pair(last_seen);
CREATE INDEX IF NOT EXISTS hist_domain_pair_seen ON hist_domain_pair(last_seen);
CREATE INDEX IF NOT EXISTS hist_sender_seen ON hist_sender(last_seen);
CREATE INDEX IF NOT EXISTS hist_domain_seen ON hist_domain(last_seen);
CREATE INDEX IF NOT EXISTS hist_name_seen ON hist_name(last_seen);
CREATE INDEX IF NOT EXISTS hist_seen_seen ON hist_seen(last_seen);
"""

_PAIR_UPSERT = """
INSERT INTO {table} (sender, recipient, first_seen, last_seen, count) VALUES (?, ?, ?, ?, 1)
ON CONFLICT (sender, recipient) DO UPDATE SET
    first_seen = min(first_seen, excluded.first_seen),
    last_seen = max(last_seen, excluded.last_seen), count = count + 1
RETURNING count
"""

_STATS_UPSERT = """
INSERT INTO {table} (sender, first_seen, last_seen, count, recipients) VALUES (?, ?, ?, 1, ?)
ON CONFLICT (sender) DO UPDATE SET
    first_seen = min(first_seen, excluded.first_seen),
    last_seen = max(last_seen, excluded.last_seen), count = count + 1,
    recipients = recipients + excluded.recipients
"""

_TABLES = ("hist_pair", "hist_domain_pair", "hist_sender", "hist_domain", "hist_name",
           "hist_seen")


class SqliteHistory:
    """``SenderHistory`` in a SQLite file (``":memory:"`` works for tests)."""

    def __init__(self, path: str, *, max_entries: int = 200_000, prune_every: int = 1000) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self.max_entries = max_entries
        self.prune_every = prune_every
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _contact(self, table: str, sender: str, recipient: str) -> Contact | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT first_seen, last_seen, count FROM {table} "
                "WHERE sender = ? AND recipient = ?", (sender.lower(), recipient.lower()),
            ).fetchone()
        return Contact(*row) if row else None

    def _stats(self, table: str, key: str) -> SenderStats | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT first_seen, last_seen, count, recipients FROM {table} "
                "WHERE sender = ?", (key.lower(),),
            ).fetchone()
        return SenderStats(*row) if row else None

    def pair(self, sender: str, recipient: str) -> Contact | None:
        return self._contact("hist_pair", sender, recipient)

    def domain_pair(self, domain: str, recipient: str) -> Contact | None:
        return self._contact("hist_domain_pair", domain, recipient)

    def sender(self, sender: str) -> SenderStats | None:
        return self._stats("hist_sender", sender)

    def domain(self, domain: str) -> SenderStats | None:
        return self._stats("hist_domain", domain)

    def addresses_for_name(self, display_name: str) -> tuple[str, ...]:
        with self._lock:
            rows = self._db.execute(
                "SELECT sender FROM hist_name WHERE name = ? ORDER BY last_seen DESC LIMIT 8",
                (normalise_name(display_name),),
            ).fetchall()
        return tuple(r[0] for r in rows)

    def domain_first_seen(self, domain: str) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT first_seen FROM hist_seen WHERE sender = ?",
                                   (domain.lower(),)).fetchone()
        return float(row[0]) if row else None

    def learned(self) -> int:
        # Read every time, never cached: the gateway learns in its own process and the scan
        # workers read the same file; a count cached at worker start kept HIST_* silent until a
        # restart (issue 17). One primary-key read, a few microseconds.
        with self._lock:
            return self._read_learned(self._db)

    @staticmethod
    def _read_learned(db: sqlite3.Connection | sqlite3.Cursor) -> int:
        row = db.execute("SELECT value FROM hist_meta WHERE key = 'learned'").fetchone()
        return int(row[0]) if row else 0

    def record(self, sender: str, domain: str, recipients: Sequence[str], when: float,
               display_name: str = "", link_domains: Sequence[str] = ()) -> None:
        self.record_many([Learned(sender, domain, recipients, when, display_name,
                                  link_domains)])

    def record_many(self, entries: Sequence[Learned]) -> None:
        """Every entry in one transaction: the gateway learns a writer batch at a time (one
        BEGIN/COMMIT per message was a fifth of its store writer's CPU)."""
        if not entries:
            return
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for entry in entries:
                    self._record(cur, *entry)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def _record(self, cur: sqlite3.Cursor, sender: str, domain: str,
                recipients: Sequence[str], when: float, display_name: str,
                link_domains: Sequence[str]) -> None:
        sender, domain = sender.lower(), domain.lower()
        new_s = new_d = 0
        for rcpt in dict.fromkeys(r.lower() for r in recipients):
            (count,) = cur.execute(_PAIR_UPSERT.format(table="hist_pair"),
                                   (sender, rcpt, when, when)).fetchone()
            new_s += count == 1
            (count,) = cur.execute(_PAIR_UPSERT.format(table="hist_domain_pair"),
                                   (domain, rcpt, when, when)).fetchone()
            new_d += count == 1
        cur.execute(_STATS_UPSERT.format(table="hist_sender"), (sender, when, when, new_s))
        if domain:
            cur.execute(_STATS_UPSERT.format(table="hist_domain"), (domain, when, when, new_d))
        name = normalise_name(display_name)
        if name:
            cur.execute("INSERT INTO hist_name (name, sender, last_seen) VALUES (?, ?, ?)"
                        " ON CONFLICT (name, sender) DO UPDATE SET"
                        " last_seen = max(last_seen, excluded.last_seen)",
                        (name, sender, when))
        for seen in dict.fromkeys(d.lower() for d in (domain, *link_domains) if d):
            cur.execute("INSERT INTO hist_seen (sender, first_seen, last_seen)"
                        " VALUES (?, ?, ?) ON CONFLICT (sender) DO UPDATE SET"
                        " first_seen = min(first_seen, excluded.first_seen),"
                        " last_seen = max(last_seen, excluded.last_seen)",
                        (seen, when, when))
        cur.execute("INSERT INTO hist_meta (key, value) VALUES ('learned', 1)"
                    " ON CONFLICT (key) DO UPDATE SET value = value + 1")
        if self._read_learned(cur) % self.prune_every == 0:
            self._prune(cur)

    def _prune(self, cur: sqlite3.Cursor) -> None:
        for table in _TABLES:
            (rows,) = cur.execute(f"SELECT count(*) FROM {table}").fetchone()
            excess = rows - self.max_entries
            if excess > 0:
                cur.execute(
                    f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} "
                    "ORDER BY last_seen LIMIT ?)", (excess,),
                )

    def prune(self) -> None:
        """Bound the tables now (also done automatically every ``prune_every`` messages)."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            self._prune(cur)
            cur.execute("COMMIT")
