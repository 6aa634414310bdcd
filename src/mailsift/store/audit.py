"""Append-only audit log: who did what, when, to what.

There is deliberately no update or delete here; the migration adds triggers so the database
refuses them as well (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select

from mailsift.core.protocols import Clock
from mailsift.store.db import read_only
from mailsift.store.models import AuditRecord

__all__ = ["AuditEntry", "AuditLog"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    target: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "actor": self.actor, "action": self.action,
                "target": self.target, "detail": self.detail}


class AuditLog:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def append(self, actor: str, action: str, target: str = "",
               detail: dict[str, Any] | None = None) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(AuditRecord).returning(AuditRecord.id),
                {"at": self.clock.now(), "actor": actor, "action": action,
                 "target": target[:1024],
                 "detail_json": json.dumps(detail or {}, sort_keys=True, default=str)},
            )
            return int(result.scalar_one())

    def entries(self, *, actor: str | None = None, action: str | None = None,
                target: str | None = None, since: float | None = None,
                before_id: int | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first; page with ``before_id`` = the last id of the previous page."""
        stmt = select(AuditRecord)
        if actor:
            stmt = stmt.where(AuditRecord.actor == actor)
        if action:
            stmt = stmt.where(AuditRecord.action == action)
        if target:
            stmt = stmt.where(AuditRecord.target == target)
        if since is not None:
            stmt = stmt.where(AuditRecord.at >= since)
        if before_id is not None:
            stmt = stmt.where(AuditRecord.id < before_id)
        stmt = stmt.order_by(AuditRecord.id.desc()).limit(max(1, min(limit, 1000)))
        with read_only(self.engine) as conn:
            rows = conn.execute(stmt).all()
        return [AuditEntry(r.id, r.at, r.actor, r.action, r.target, json.loads(r.detail_json))
                for r in rows]
