"""Engines and migrations: SQLite (WAL, under the data dir) by default, PostgreSQL by URL.

SQLite runs with ``journal_mode=WAL`` (readers never block the writer) and
``synchronous=FULL`` so a commit is on disk before the store reports success, with
``foreign_keys=ON`` and a busy timeout so concurrent releasers queue instead of failing.
PostgreSQL may be confined to a schema (``store.db_schema``): it is created if missing and set as
the connection's search path, which is how parallel test runs stay apart.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from mailsift.core.errors import StoreError

__all__ = [
    "create_store_engine", "current_revision", "head_revision", "read_only", "upgrade",
]

_MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATE_LOCK = 0x6D736D67  # advisory lock key of migrations ("msmg")
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def create_store_engine(url: str, *, schema: str = "", echo: bool = False) -> Engine:
    """An engine for ``url``; creates the SQLite directory or the PostgreSQL schema if needed."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread: the HTTP API and release workers use the pool from several threads;
        # SQLAlchemy's pool already guarantees one thread per connection at a time.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN until the first write, which lets two
        # writers both read-then-write; write transactions emit BEGIN IMMEDIATE so claims
        # serialise, read-only ones (``read_only``) a plain BEGIN.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if schema:
            if not _SCHEMA_NAME.match(schema):
                raise StoreError(f"invalid schema name {schema!r}")
            kwargs["connect_args"] = {"options": f"-csearch_path={schema}"}
        kwargs["pool_pre_ping"] = True
        engine = create_engine(url, **kwargs)
        if schema:
            with engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        return engine
    raise StoreError(f"unsupported database {parsed.get_backend_name()!r} (sqlite or postgresql)")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # autocommit at the driver; SQLAlchemy emits BEGIN
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    if conn.get_execution_options().get("mailsift_read"):
        conn.exec_driver_sql("BEGIN")  # a reader: WAL lets it run beside the writer
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def read_only(engine: Engine) -> Connection:
    """A connection for reading: on SQLite its transaction takes no write lock, so a long
    search never stalls the gateway's inserts (writers use ``engine.begin()``)."""
    return engine.connect().execution_options(mailsift_read=True)


def _config(engine: Engine, connection: Any, schema: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    cfg.attributes["schema"] = schema
    return cfg


def upgrade(engine: Engine, *, schema: str = "", revision: str = "head") -> str | None:
    """Bring the database to ``revision``; returns the revision it is at afterwards."""
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # nodes starting together: one migrates, the others wait and find it done
                conn.execute(text("SELECT pg_advisory_xact_lock(:k, hashtext(:s))"),
                             {"k": _MIGRATE_LOCK, "s": schema})
            command.upgrade(_config(engine, conn, schema), revision)
    except Exception as exc:
        raise StoreError(f"migration failed: {exc}") from exc
    return current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()
