"""Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mailsift.store import Store
from mailsift.store.db import current_revision, head_revision, upgrade
from mailsift.store.schema import metadata


def test_migrated_schema_matches_models(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert current_revision(store.engine) == head_revision()


def test_upgrade_is_idempotent(store: Store) -> None:
    assert upgrade(store.engine, schema=store.settings.db_schema) == head_revision()


def test_sqlite_runs_in_wal_mode(store: Store) -> None:
    if store.backend != "sqlite":
        pytest.skip("SQLite only")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


@pytest.mark.parametrize("sql", ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"])
def test_database_refuses_to_rewrite_audit(store: Store, sql: str) -> None:
    store.audit.append("alice", "test", "t")
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text(sql))
    assert [e.actor for e in store.audit.entries()] == ["alice"]


def test_sqlite_readers_do_not_block_the_writer(store: Store) -> None:
    if store.backend != "sqlite":
        pytest.skip("SQLite only")
    import time

    from mailsift.store.db import read_only

    with read_only(store.engine) as reader:
        reader.execute(text("SELECT count(*) FROM trace")).scalar()  # transaction now open
        started = time.monotonic()
        store.audit.append("writer", "test")  # would wait for the busy timeout otherwise
        assert time.monotonic() - started < 2
