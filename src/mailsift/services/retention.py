"""Retention use cases: incident holds and the purge that respects them (both audited)."""

from __future__ import annotations

from mailsift.services.access import NotFound, Principal, require
from mailsift.store import HoldInfo, PurgeReport, Store, TraceQuery

__all__ = ["RetentionService"]


class RetentionService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def place_hold(self, actor: Principal, name: str, query: TraceQuery, *,
                   reason: str = "") -> HoldInfo:
        require(actor, "hold.write")
        hold = self.store.retention.place_hold(name, query, actor=actor.name, reason=reason)
        self.store.audit.append(actor.name, "hold.place", hold.id, {
            "name": name, "reason": reason, "query": query.to_dict(), "messages": hold.messages,
        })
        return hold

    def release_hold(self, actor: Principal, hold_id: str) -> None:
        require(actor, "hold.write")
        if not self.store.retention.release_hold(hold_id):
            raise NotFound(f"no active hold {hold_id}")
        self.store.audit.append(actor.name, "hold.release", hold_id)

    def holds(self, actor: Principal) -> list[HoldInfo]:
        require(actor, "trace.read")
        return self.store.retention.holds()

    def purge(self, actor: Principal, older_than_days: float | None = None) -> PurgeReport:
        require(actor, "retention.purge")
        days = older_than_days if older_than_days is not None else \
            self.store.settings.retention_days
        report = self.store.retention.purge(days)
        self.store.audit.append(actor.name, "retention.purge", "", {
            "older_than_days": days, "messages": report.messages, "blobs": report.blobs,
            "held": report.held,
        })
        return report
