"""Trace use cases: search and read what was decided about each message, and why."""

from __future__ import annotations

from mailsift.services.access import NotFound, Principal, require
from mailsift.store import MessageRecord, Page, Store, TraceQuery

__all__ = ["TraceService"]


class TraceService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def search(self, actor: Principal, query: TraceQuery, *, cursor: str | None = None,
               limit: int = 50) -> Page:
        require(actor, "trace.read")
        return self.store.trace.search(query, cursor=cursor, limit=limit)

    def count(self, actor: Principal, query: TraceQuery) -> tuple[int, int]:
        require(actor, "trace.read")
        return self.store.trace.count(query)

    def get(self, actor: Principal, message: str) -> MessageRecord:
        require(actor, "trace.read")
        rec = self.store.trace.get(message)
        if rec is None:
            raise NotFound(f"no message {message}")
        return rec
