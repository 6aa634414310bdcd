"""Reading the audit log (writing happens inside each use case, never from outside)."""

from __future__ import annotations

from mailsift.services.access import Principal, require
from mailsift.store import AuditEntry, Store

__all__ = ["AuditService"]


class AuditService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def entries(self, actor: Principal, *, who: str | None = None, action: str | None = None,
                target: str | None = None, since: float | None = None,
                before_id: int | None = None, limit: int = 100) -> list[AuditEntry]:
        require(actor, "audit.read")
        return self.store.audit.entries(actor=who, action=action, target=target, since=since,
                                        before_id=before_id, limit=limit)
