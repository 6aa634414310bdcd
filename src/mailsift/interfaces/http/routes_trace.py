"""``/v1/trace``: search the message trace, read one message's record; ``/v1/whoami``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from mailsift.interfaces.http.deps import Caller, Services, TraceFilter

__all__ = ["router"]

router = APIRouter(tags=["trace"])


@router.get("/whoami")
def whoami(caller: Caller) -> dict[str, Any]:
    return {"name": caller.name, "role": caller.role, "mailbox": caller.mailbox}


@router.get("/trace")
def search_trace(svc: Services, caller: Caller, query: TraceFilter,
                 cursor: str | None = None, limit: int = Query(50, ge=1, le=1000)
                 ) -> dict[str, Any]:
    """One row per message and recipient, newest first; follow ``next_cursor`` for more."""
    return svc.trace.search(caller, query, cursor=cursor, limit=limit).to_dict()


@router.get("/trace/count")
def count_trace(svc: Services, caller: Caller, query: TraceFilter) -> dict[str, int]:
    n, m = svc.trace.count(caller, query)
    return {"recipients": n, "messages": m}


@router.get("/trace/{message}")
def get_trace(svc: Services, caller: Caller, message: str) -> dict[str, Any]:
    return svc.trace.get(caller, message).to_dict()
