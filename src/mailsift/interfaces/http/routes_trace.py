"""``/v1/trace``: search the message trace, read one message's record; ``/v1/whoami``."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from mailsift.interfaces.http.deps import Caller, Services, TraceFilter
from mailsift.services.trace import EXPORT_FORMATS
from mailsift.store.query import SORTS

__all__ = ["router"]

router = APIRouter(tags=["trace"])


@router.get("/whoami")
def whoami(caller: Caller) -> dict[str, Any]:
    return {"name": caller.name, "role": caller.role, "mailbox": caller.mailbox}


_SORT_HELP = f"column to sort by: {', '.join(SORTS)}"


@router.get("/trace")
def search_trace(svc: Services, caller: Caller, query: TraceFilter,
                 cursor: str | None = None, limit: int = Query(50, ge=1, le=1000),
                 sort: str = Query("received", description=_SORT_HELP),
                 order: Literal["asc", "desc"] = "desc") -> dict[str, Any]:
    """One row per message and recipient, newest first by default; follow ``next_cursor``
    (or ``prev_cursor``) with the same ``sort`` and ``order``."""
    return svc.trace.search(caller, query, cursor=cursor, limit=limit, sort=sort,
                            descending=order == "desc").to_dict()


@router.get("/trace/export")
def export_trace(svc: Services, caller: Caller, query: TraceFilter,
                 format: Literal["csv", "json"] = "csv",
                 sort: str = Query("received", description=_SORT_HELP),
                 order: Literal["asc", "desc"] = "desc") -> StreamingResponse:
    """Every row of the search as CSV or a JSON array, streamed; audited as ``trace.export``."""
    chunks = svc.trace.export(caller, query, format, sort=sort, descending=order == "desc")
    return StreamingResponse(chunks, media_type=EXPORT_FORMATS[format], headers={
        "Content-Disposition": f'attachment; filename="mailsift-trace.{format}"'})


@router.get("/trace/count")
def count_trace(svc: Services, caller: Caller, query: TraceFilter) -> dict[str, int]:
    n, m = svc.trace.count(caller, query)
    return {"recipients": n, "messages": m}


@router.get("/trace/{message}")
def get_trace(svc: Services, caller: Caller, message: str) -> dict[str, Any]:
    """The message's record, with ``deliveries``: every attempt to hand each recipient's copy
    to the next hop (outcome, SMTP reply code and text, retry time)."""
    out = svc.trace.get(caller, message).to_dict()
    out["deliveries"] = [a.to_dict() for a in svc.trace.attempts(caller, message)]
    return out
