"""Migrated store templates: a copy must be the very database the migrations produce."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text

from mailsift.store import Store
from mailsift.store.db import current_revision, head_revision
from mailsift.testing import templates
from mailsift.testing.storekit import make_result, temp_store_settings


def _schema(engine: Engine) -> dict[str, Any]:
    """Everything the migrations define, comparable across two databases."""
    insp = inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        out[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                        for c in insp.get_columns(table)],
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"],
                           tuple(f["referred_columns"]), str(f.get("options")))
                          for f in insp.get_foreign_keys(table)),
            "indexes": sorted((i["name"], tuple(map(str, i["column_names"])), i["unique"])
                              for i in insp.get_indexes(table)),
            "uniques": sorted((u["name"], tuple(u["column_names"]))
                              for u in insp.get_unique_constraints(table)),
            "checks": sorted((c["name"] or "", c["sqltext"])
                             for c in insp.get_check_constraints(table)),
        }
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(text("SELECT type, name, tbl_name, sql FROM sqlite_master "
                                     "WHERE type IN ('trigger', 'view') ORDER BY name"))
        else:
            rows = conn.execute(text(
                "SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                "AND NOT t.tgisinternal ORDER BY t.tgname"))
        schema_name = conn.execute(text("SELECT current_schema()")).scalar() \
            if engine.dialect.name == "postgresql" else None
        out["_triggers"] = [tuple(str(v).replace(f"{schema_name}.", "") if schema_name
                                  else str(v) for v in row) for row in rows]
    return out


def test_a_seeded_store_is_the_migrated_schema_at_head(backend: str, tmp_path: Path) -> None:
    with temp_store_settings(backend, tmp_path / "fresh", migrated=False) as fresh, \
            temp_store_settings(backend, tmp_path / "copy") as copy:
        migrated = Store.open(fresh)  # runs every migration
        seeded = Store.open(copy, migrate=False)
        try:
            assert current_revision(seeded.engine) == head_revision() is not None
            expected = _schema(migrated.engine)
            assert "trace" in expected and expected["_triggers"]
            assert _schema(seeded.engine) == expected
        finally:
            seeded.close()
            migrated.close()


def test_seeded_stores_are_independent(backend: str, tmp_path: Path) -> None:
    with temp_store_settings(backend, tmp_path / "a") as a, \
            temp_store_settings(backend, tmp_path / "b") as b:
        first, second = Store.open(a, migrate=False), Store.open(b, migrate=False)
        try:
            first.trace.record(make_result("only-in-a", b"raw"), b"raw")
            assert first.trace.get("only-in-a") is not None
            assert second.trace.get("only-in-a") is None
        finally:
            first.close()
            second.close()


def test_a_template_copy_never_overwrites_a_database(tmp_path: Path) -> None:
    with temp_store_settings("sqlite", tmp_path) as settings, \
            pytest.raises(FileExistsError, match="fresh data dir"):
        templates.seed(settings)  # seeded already by temp_store_settings


def test_unmigrated_settings_leave_the_database_to_store_open(tmp_path: Path) -> None:
    with temp_store_settings("sqlite", tmp_path, migrated=False) as settings:
        assert not (tmp_path / "mailsift.db").exists()
        with Store.open(settings) as store:
            assert current_revision(store.engine) == head_revision()
