"""Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mailsift.store import Store, TraceQuery
from mailsift.store.db import create_store_engine, current_revision, head_revision, upgrade
from mailsift.store.schema import metadata
from mailsift.testing.storekit import temp_store_settings


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


def test_0009_backfills_the_search_keys_from_stored_messages(backend: str,
                                                             tmp_path: Path) -> None:
    """A store from before migration 0009 is found by Message-ID and by the sender's name."""
    with temp_store_settings(backend, tmp_path, migrated=False) as settings:
        engine = create_store_engine(settings.database_url(), schema=settings.db_schema)
        try:
            assert upgrade(engine, schema=settings.db_schema, revision="0008") == "0008"
            with engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO messages (id, received_at, rcpt_to, from_header, to_header, "
                    "subject, message_id_header, date_header, size, category, action, score, "
                    "decided_by, explanation, auth_json, verdict_json) VALUES ('ms-old', 1.0, "
                    "'[]', '\"PayPal\" <service@pp.example>', '', 'Limited', "
                    "'<Old-1@PP.example>', '', 1, 'phish', 'quarantine', 1.0, 'detection', "
                    "'', 'null', '{}')"))
                conn.execute(text(
                    "INSERT INTO trace (message_pk, recipient, received_at, mail_from, "
                    "from_addr, subject, category, action, score, decided_by, policy, "
                    "verdict_json, status, updated_at) VALUES ('ms-old', 'ann@example.net', "
                    "1.0, 'b@pp.example', 'service@pp.example', 'Limited', 'phish', "
                    "'quarantine', 1.0, 'detection', '', '{}', 'quarantined', 1.0)"))
            assert upgrade(engine, schema=settings.db_schema) == head_revision()
        finally:
            engine.dispose()
        with Store.open(settings, migrate=False) as store:
            for query in (TraceQuery(message_id="old-1@pp.example"),
                          TraceQuery(sender="paypal"), TraceQuery(recipient="ann@")):
                assert [r.message for r in store.trace.search(query).items] == ["ms-old"]
