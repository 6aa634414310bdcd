"""Alembic environment: migrations run on a connection handed over by ``mailsift.store.db``.

There is no ``alembic.ini``: the store configures Alembic in code so the migrations ship inside
the package and run with whatever URL and schema the settings name.
"""

from __future__ import annotations

from alembic import context

from mailsift.store.schema import metadata

config = context.config
target_metadata = metadata

connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable from the alembic CLI
    raise RuntimeError("run migrations through mailsift.store.db.upgrade()")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    version_table_schema=config.attributes.get("schema") or None,
)
with context.begin_transaction():
    context.run_migrations()
