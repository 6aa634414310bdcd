"""Migrated store templates: run the migrations once per test process, copy the result per store.

Running every Alembic migration for each of the few hundred store tests was a large, avoidable
cost of the suite. Each process (each pytest-xdist worker) instead migrates one template per
backend on first use and every later store starts as a copy:

- SQLite: the template is a migrated database file in a private temporary directory; a store
  gets a copy made with SQLite's online backup API (consistent whatever the journal mode).
- PostgreSQL: tests keep their unique schema per store in the shared ``test`` database. The
  template schema is migrated once, dumped with ``pg_dump`` (tables, indexes, constraints,
  sequences, trigger functions and the ``alembic_version`` row), and dropped straight away; a
  store's schema is created by running that script with the schema name swapped in, in one
  transaction. Without a usable ``pg_dump`` (not installed, older than the server) each schema
  is migrated on its own instead: the same result, just slower.

The copy is at the head revision, so ``Store.open`` finds nothing to migrate. Tests of the
migrations themselves start from empty databases and do not use this module.
"""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

from mailsift.config.store import StoreSettings

__all__ = ["pg_script", "seed", "sqlite_template"]

#: The test database (trust auth on this machine and in CI); ``storekit`` re-exports both.
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"  # the same database, for psycopg

_PLACEHOLDER = "mailsift_template_schema_placeholder"
_lock = threading.Lock()
_built: dict[str, object] = {}


def _workdir() -> Path:
    if "dir" not in _built:
        path = Path(tempfile.mkdtemp(prefix="mailsift-templates-"))
        atexit.register(shutil.rmtree, path, True)
        _built["dir"] = path
    return Path(str(_built["dir"]))


def sqlite_template() -> Path:
    """The migrated SQLite template of this process (built on first use)."""
    from mailsift.store import Store

    with _lock:
        if "sqlite" not in _built:
            data = _workdir() / "sqlite"
            Store.open(StoreSettings(data_dir=str(data))).close()  # closing folds the WAL in
            _built["sqlite"] = data / "mailsift.db"
        return Path(str(_built["sqlite"]))


def pg_script() -> str | None:
    """SQL that recreates the migrated schema under a placeholder name; None without a usable
    ``pg_dump`` (each schema is then migrated on its own)."""
    with _lock:
        if "pg" not in _built:
            _built["pg"] = _dump_pg_template()
        script = _built["pg"]
        return script if isinstance(script, str) else None


def _dump_pg_template() -> str | None:
    import psycopg

    from mailsift.store import Store

    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        return None
    schema = f"mailsift_tmpl_{uuid.uuid4().hex}"
    try:
        Store.open(StoreSettings(data_dir=str(_workdir() / schema), url=PG_URL,
                                 db_schema=schema)).close()
        dump = subprocess.run(
            [pg_dump, "--dbname", PG_DSN, "--schema", schema, "--no-owner", "--no-privileges",
             "--inserts"], capture_output=True, text=True, timeout=120, check=False)
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    if dump.returncode != 0:  # e.g. pg_dump older than the server: migrate per store instead
        return None
    # psql meta-commands (recent pg_dump brackets the script with \restrict) are not SQL
    lines = [line for line in dump.stdout.splitlines() if not line.startswith("\\")]
    return "\n".join(lines).replace(schema, _PLACEHOLDER)


def seed(settings: StoreSettings) -> None:
    """Make the database ``settings`` name a migrated one, at the head revision, as a copy of
    the template. The database must not exist yet (a fresh SQLite data dir, a new PostgreSQL
    schema name)."""
    if settings.url:
        _seed_pg(settings.db_schema)
    else:
        _seed_sqlite(Path(settings.data_dir).resolve() / "mailsift.db")


def _seed_sqlite(target: Path) -> None:
    if target.exists():
        raise FileExistsError(f"{target} exists; a template copy needs a fresh data dir")
    template = sqlite_template()
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{template}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _seed_pg(schema: str) -> None:
    import psycopg


    if not schema:
        raise ValueError("a PostgreSQL template copy needs a schema of its own")
    script = pg_script()
    if script is None:  # no pg_dump: migrate this schema the slow way
        from mailsift.store.db import create_store_engine, upgrade

        engine = create_store_engine(PG_URL, schema=schema)
        try:
            upgrade(engine, schema=schema)
        finally:
            engine.dispose()
        return
    with psycopg.connect(PG_DSN) as conn:  # one transaction: all of the schema or nothing
        conn.execute(script.replace(_PLACEHOLDER, schema).encode())
