"""Blobs in a table of the store's own database (the default when the store is PostgreSQL).

Every node that reaches the database reads every original, and backups of the database carry
them (``pg_dump`` or a base backup plus WAL: one restore brings back rows and originals in step).
Guarantees: ``put_many`` inserts the batch in one transaction and returns once it commits, so a
reported success is as durable as the database's commit (``synchronous_commit = on``, the
default: flushed to the WAL; with a synchronous replica, on both). Content addressing is the
primary key: an identical message inserts nothing. Every read checks the sha256. PostgreSQL
stores ``bytea`` out of line and compressed (TOAST), so a message costs about its compressed size.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from mailsift.core.errors import StoreError
from mailsift.store.blobs import check_digest, digest, verified
from mailsift.store.db import read_only
from mailsift.store.models import BlobRow

__all__ = ["DatabaseBlobs"]

_PAGE = 1000


class DatabaseBlobs:
    """Raw bytes by sha256 in the ``blobs`` table (the ``postgresql`` backend)."""

    name = "postgresql"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    @staticmethod
    def digest(data: bytes) -> str:
        return digest(data)

    def put_many(self, items: Iterable[bytes]) -> list[str]:
        blobs = list(items)
        digests = [digest(b) for b in blobs]
        unique = dict(zip(digests, blobs, strict=True))
        if not unique:
            return digests
        now = time.time()
        rows = [{"sha256": d, "size": len(b), "data": b, "created_at": now}
                for d, b in unique.items()]
        try:
            with self.engine.begin() as conn:
                conn.execute(self._insert(BlobRow).on_conflict_do_nothing(
                    index_elements=["sha256"]), rows)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot write blob: {exc}") from exc
        return digests

    def get(self, sha256: str) -> bytes:
        check_digest(sha256)
        try:
            with read_only(self.engine) as conn:
                data = conn.execute(
                    select(BlobRow.data).where(BlobRow.sha256 == sha256)).scalar_one_or_none()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read blob {sha256}: {exc}") from exc
        if data is None:
            raise StoreError(f"blob {sha256} not found")
        return verified(sha256, bytes(data))

    def exists(self, sha256: str) -> bool:
        check_digest(sha256)
        try:
            with read_only(self.engine) as conn:
                return conn.execute(select(BlobRow.sha256).where(BlobRow.sha256 == sha256)
                                    ).first() is not None
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot look up blob {sha256}: {exc}") from exc

    def delete(self, sha256: str) -> bool:
        check_digest(sha256)
        try:
            with self.engine.begin() as conn:
                return bool(conn.execute(delete(BlobRow).where(BlobRow.sha256 == sha256))
                            .rowcount)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot delete blob {sha256}: {exc}") from exc

    def ids(self) -> Iterator[str]:
        after = ""
        while True:
            with read_only(self.engine) as conn:
                page = list(conn.execute(select(BlobRow.sha256).where(BlobRow.sha256 > after)
                                         .order_by(BlobRow.sha256).limit(_PAGE)).scalars())
            yield from page
            if len(page) < _PAGE:
                return
            after = page[-1]

    def close(self) -> None:
        """The engine belongs to the store, which disposes of it."""
