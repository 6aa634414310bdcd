"""Trace use cases: search and read what was decided about each message, and why."""

from __future__ import annotations

from mailsift.core.errors import InputError
from mailsift.services.access import NotFound, Principal, require
from mailsift.store import MessageRecord, Page, Store, TraceQuery

__all__ = ["MIN_REF_PREFIX", "TraceService"]

#: The shortest reference prefix accepted for a whole reference ("ms-" and 5 characters).
MIN_REF_PREFIX = 8


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

    def resolve(self, actor: Principal, ref: str) -> str:
        """The full reference a person typed: the reference itself, or an unambiguous prefix
        of at least ``MIN_REF_PREFIX`` characters (``quarantine show``, ``release``...)."""
        require(actor, "trace.read")
        ref = ref.strip()
        found = self.store.trace.refs_starting(ref) if ref else []
        if found and (found[0] == ref or (len(found) == 1 and len(ref) >= MIN_REF_PREFIX)):
            return found[0]
        if len(found) > 1:
            raise InputError(f"{ref} is ambiguous ({found[0]}, {found[1]}, ...); give more of "
                             "the reference")
        if found:
            raise InputError(f"{ref} is too short: give at least {MIN_REF_PREFIX} characters of "
                             "the reference")
        raise NotFound(f"no message {ref}")
