"""Sender history in a SQL database shared by every gateway node (PostgreSQL in production).

When the store is PostgreSQL, ``mailsift serve`` keeps the history in the store's database (the
``hist_*`` tables, in the store's schema), so each node, and each scan worker of each node, sees
the same first-contact state: a sender that wrote to a recipient through node 1 is known on node
3 as soon as the learning transaction commits. Reads go to the database on every lookup; only the
``learned`` counter (read by four detectors per message) is cached, for ``learned_ttl`` seconds
(one second by default), so a worker sees the history warm up within seconds, never only after
a restart. Tables are created on first open (``CREATE TABLE IF NOT EXISTS`` under an advisory
lock, so nodes starting together do not race); size is bounded as in ``SqliteHistory``. Learning
commits without waiting for the WAL flush (``synchronous_commit = off`` for that transaction):
a crash of the database server may forget the last fraction of a second of learning.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    func,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite

from mailsift.history.base import Contact, Learned, SenderStats, normalise_name, record_each

__all__ = ["SqlHistory"]

_META = MetaData()


def _pair_table(name: str) -> Table:
    return Table(name, _META,
                 Column("sender", String(320), primary_key=True),
                 Column("recipient", String(320), primary_key=True),
                 Column("first_seen", Float, nullable=False),
                 Column("last_seen", Float, nullable=False, index=True),
                 Column("count", Integer, nullable=False))


def _stats_table(name: str) -> Table:
    return Table(name, _META,
                 Column("sender", String(320), primary_key=True),
                 Column("first_seen", Float, nullable=False),
                 Column("last_seen", Float, nullable=False, index=True),
                 Column("count", Integer, nullable=False),
                 Column("recipients", Integer, nullable=False))


PAIR = _pair_table("hist_pair")
DOMAIN_PAIR = _pair_table("hist_domain_pair")
SENDER = _stats_table("hist_sender")
DOMAIN = _stats_table("hist_domain")
NAME = Table("hist_name", _META,
             Column("name", String(320), primary_key=True),
             Column("sender", String(320), primary_key=True),
             Column("last_seen", Float, nullable=False),
             Index("ix_hist_name_seen", "last_seen"))
SEEN = Table("hist_seen", _META,
             Column("sender", String(320), primary_key=True),
             Column("first_seen", Float, nullable=False),
             Column("last_seen", Float, nullable=False, index=True))
META = Table("hist_meta", _META,
             Column("key", String(64), primary_key=True),
             Column("value", Integer, nullable=False))
_BOUNDED = (PAIR, DOMAIN_PAIR, SENDER, DOMAIN, NAME, SEEN)
_LOCK_ID = 0x6D736869  # advisory lock key of table creation ("mshi")


class SqlHistory:
    """``SenderHistory`` in a SQL database (PostgreSQL, or SQLite for a single node)."""

    def __init__(self, url: str | None = None, *, schema: str = "", engine: Engine | None = None,
                 max_entries: int = 200_000, prune_every: int = 1000,
                 learned_ttl: float = 1.0) -> None:
        if engine is None:
            if not url:
                raise ValueError("SqlHistory needs a database URL or an engine")
            kwargs: dict[str, Any] = {"pool_pre_ping": True}
            if schema and url.startswith("postgresql"):
                kwargs["connect_args"] = {"options": f"-csearch_path={schema}"}
            engine = create_engine(url, **kwargs)
            self._owns_engine = True
        else:
            self._owns_engine = False
        self.engine = engine
        self.max_entries = max_entries
        self.prune_every = prune_every
        self.learned_ttl = learned_ttl
        self._pg = engine.dialect.name == "postgresql"
        self._insert = postgresql.insert if self._pg else sqlite.insert
        self._learned: tuple[float, int] = (-1e18, 0)
        self._lock = threading.Lock()
        self._create(schema)

    def _create(self, schema: str) -> None:
        with self.engine.begin() as conn:
            if self._pg:
                if schema:
                    conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
            _META.create_all(conn, checkfirst=True)

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    # -- reading --------------------------------------------------------------------------------
    def _contact(self, table: Table, sender: str, recipient: str) -> Contact | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(table.c.first_seen, table.c.last_seen, table.c.count)
                               .where(table.c.sender == sender.lower(),
                                      table.c.recipient == recipient.lower())).first()
        return Contact(float(row[0]), float(row[1]), int(row[2])) if row else None

    def _stats(self, table: Table, key: str) -> SenderStats | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(table.c.first_seen, table.c.last_seen, table.c.count,
                                      table.c.recipients)
                               .where(table.c.sender == key.lower())).first()
        return SenderStats(float(row[0]), float(row[1]), int(row[2]), int(row[3])) \
            if row else None

    def pair(self, sender: str, recipient: str) -> Contact | None:
        return self._contact(PAIR, sender, recipient)

    def domain_pair(self, domain: str, recipient: str) -> Contact | None:
        return self._contact(DOMAIN_PAIR, domain, recipient)

    def sender(self, sender: str) -> SenderStats | None:
        return self._stats(SENDER, sender)

    def domain(self, domain: str) -> SenderStats | None:
        return self._stats(DOMAIN, domain)

    def addresses_for_name(self, display_name: str) -> tuple[str, ...]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(NAME.c.sender)
                                .where(NAME.c.name == normalise_name(display_name))
                                .order_by(NAME.c.last_seen.desc()).limit(8)).scalars().all()
        return tuple(rows)

    def domain_first_seen(self, domain: str) -> float | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(SEEN.c.first_seen)
                                 .where(SEEN.c.sender == domain.lower())).scalar()
        return float(value) if value is not None else None

    def learned(self) -> int:
        now = time.monotonic()
        at, value = self._learned
        if now - at < self.learned_ttl:
            return value
        with self.engine.connect() as conn:
            value = int(conn.execute(select(META.c.value).where(META.c.key == "learned"))
                        .scalar() or 0)
        self._learned = (now, value)
        return value

    # -- writing --------------------------------------------------------------------------------
    def _upsert_pair(self, conn: Any, table: Table, sender: str, rcpt: str, when: float) -> int:
        ins = self._insert(table).values(sender=sender, recipient=rcpt, first_seen=when,
                                         last_seen=when, count=1)
        stmt = ins.on_conflict_do_update(
            index_elements=["sender", "recipient"],
            set_={"first_seen": func.least(table.c.first_seen, ins.excluded.first_seen)
                  if self._pg else func.min(table.c.first_seen, ins.excluded.first_seen),
                  "last_seen": self._max(table.c.last_seen, ins.excluded.last_seen),
                  "count": table.c.count + 1},
        ).returning(table.c.count)
        return int(conn.execute(stmt).scalar_one())

    def _max(self, a: Any, b: Any) -> Any:
        return func.greatest(a, b) if self._pg else func.max(a, b)

    def _min(self, a: Any, b: Any) -> Any:
        return func.least(a, b) if self._pg else func.min(a, b)

    def _upsert_stats(self, conn: Any, table: Table, key: str, when: float, new: int) -> None:
        ins = self._insert(table).values(sender=key, first_seen=when, last_seen=when, count=1,
                                         recipients=new)
        conn.execute(ins.on_conflict_do_update(
            index_elements=["sender"],
            set_={"first_seen": self._min(table.c.first_seen, ins.excluded.first_seen),
                  "last_seen": self._max(table.c.last_seen, ins.excluded.last_seen),
                  "count": table.c.count + 1,
                  "recipients": table.c.recipients + ins.excluded.recipients}))

    def record_many(self, entries: Sequence[Learned]) -> None:
        record_each(self, entries)

    def record(self, sender: str, domain: str, recipients: Sequence[str], when: float,
               display_name: str = "", link_domains: Sequence[str] = ()) -> None:
        sender, domain = sender.lower(), domain.lower()
        with self.engine.begin() as conn:
            if self._pg:
                # History is not a store of record (as SqliteHistory's synchronous=NORMAL): a
                # crash may forget the last learned messages, never corrupt them. Not waiting
                # for the WAL flush keeps the gateway's writer thread (which learns between
                # trace commits) from waiting one fsync per delivered message.
                conn.execute(text("SET LOCAL synchronous_commit = off"))
            new_s = new_d = 0
            for rcpt in dict.fromkeys(r.lower() for r in recipients):
                new_s += self._upsert_pair(conn, PAIR, sender, rcpt, when) == 1
                new_d += self._upsert_pair(conn, DOMAIN_PAIR, domain, rcpt, when) == 1
            self._upsert_stats(conn, SENDER, sender, when, new_s)
            if domain:
                self._upsert_stats(conn, DOMAIN, domain, when, new_d)
            name = normalise_name(display_name)
            if name:
                ins = self._insert(NAME).values(name=name, sender=sender, last_seen=when)
                conn.execute(ins.on_conflict_do_update(
                    index_elements=["name", "sender"],
                    set_={"last_seen": self._max(NAME.c.last_seen, ins.excluded.last_seen)}))
            for seen in dict.fromkeys(d.lower() for d in (domain, *link_domains) if d):
                ins = self._insert(SEEN).values(sender=seen, first_seen=when, last_seen=when)
                conn.execute(ins.on_conflict_do_update(
                    index_elements=["sender"],
                    set_={"first_seen": self._min(SEEN.c.first_seen, ins.excluded.first_seen),
                          "last_seen": self._max(SEEN.c.last_seen, ins.excluded.last_seen)}))
            ins = self._insert(META).values(key="learned", value=1)
            learned = int(conn.execute(ins.on_conflict_do_update(
                index_elements=["key"], set_={"value": META.c.value + 1})
                .returning(META.c.value)).scalar_one())
            if learned % self.prune_every == 0:
                self._prune(conn)
        self._learned = (time.monotonic(), learned)

    def _prune(self, conn: Any) -> None:
        for table in _BOUNDED:
            rows = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            excess = rows - self.max_entries
            if excess > 0:
                keys = [c for c in table.primary_key.columns]
                oldest = select(*keys).order_by(table.c.last_seen).limit(excess)
                conn.execute(delete(table).where(tuple_(*keys).in_(oldest)))

    def prune(self) -> None:
        """Bound the tables now (also done automatically every ``prune_every`` messages)."""
        with self.engine.begin() as conn:
            self._prune(conn)
