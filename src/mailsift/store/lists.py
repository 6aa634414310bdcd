"""Allow/block list rows and the snapshot policy reads.

The snapshot's ``version`` is a hash of the active entries' content, so two gateways holding the
same entries report the same version in their verdicts, and any change yields a new one.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from mailsift.core.errors import StoreError
from mailsift.core.lists import ListEntry, ListSnapshot
from mailsift.core.protocols import Clock
from mailsift.store.db import read_only
from mailsift.store.models import ListEntryRow

__all__ = ["ListStore", "snapshot_version"]


def snapshot_version(entries: tuple[ListEntry, ...]) -> str:
    if not entries:
        return "empty"
    canon = sorted(
        (e.kind, e.value, e.action, e.scope, e.expires_at or 0.0) for e in entries
    )
    return hashlib.sha256(json.dumps(canon).encode()).hexdigest()[:16]


class ListStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def add(self, entry: ListEntry) -> ListEntry:
        """Insert a validated entry (see ``services.lists`` for validation)."""
        entry_id = entry.entry_id or uuid.uuid4().hex
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(ListEntryRow), {
                    "id": entry_id, "kind": entry.kind, "value": entry.value,
                    "action": entry.action, "scope": entry.scope, "expires_at": entry.expires_at,
                    "note": entry.note, "author": entry.author, "created_at": self.clock.now(),
                })
        except IntegrityError as exc:
            raise StoreError(
                f"{entry.scope} {entry.action} {entry.kind} {entry.value!r} already exists"
            ) from exc
        return ListEntry(entry.kind, entry.value, entry.action, entry.scope, entry_id,
                         entry.expires_at, entry.note, entry.author)

    def remove(self, entry_id: str) -> ListEntry | None:
        with self.engine.begin() as conn:
            row = conn.execute(select(ListEntryRow).where(ListEntryRow.id == entry_id)).first()
            if row is None:
                return None
            conn.execute(delete(ListEntryRow).where(ListEntryRow.id == entry_id))
        return _entry(row)

    def entries(self, *, kind: str | None = None, scope: str | None = None,
                action: str | None = None, value: str | None = None,
                include_expired: bool = True) -> list[ListEntry]:
        stmt = select(ListEntryRow)
        if kind:
            stmt = stmt.where(ListEntryRow.kind == kind)
        if scope:
            stmt = stmt.where(ListEntryRow.scope == scope)
        if action:
            stmt = stmt.where(ListEntryRow.action == action)
        if value:
            stmt = stmt.where(ListEntryRow.value == value)
        if not include_expired:
            now = self.clock.now()
            stmt = stmt.where(
                (ListEntryRow.expires_at.is_(None)) | (ListEntryRow.expires_at > now)
            )
        stmt = stmt.order_by(ListEntryRow.scope, ListEntryRow.kind, ListEntryRow.value)
        with read_only(self.engine) as conn:
            return [_entry(r) for r in conn.execute(stmt).all()]

    def snapshot(self) -> ListSnapshot:
        """The active entries now, with a content version."""
        entries = tuple(self.entries(include_expired=False))
        return ListSnapshot(entries=entries, version=snapshot_version(entries),
                            taken_at=self.clock.now())


def _entry(r: Any) -> ListEntry:
    return ListEntry(kind=r.kind, value=r.value, action=r.action, scope=r.scope, entry_id=r.id,
                     expires_at=r.expires_at, note=r.note, author=r.author)
