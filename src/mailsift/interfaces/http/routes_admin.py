"""``/v1/lists``, ``/v1/holds`` and ``/v1/audit``."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from mailsift.interfaces.http.deps import Caller, QueryId, Services
from mailsift.services.access import require, require_reason
from mailsift.services.lists import entry_dict
from mailsift.store import TraceQuery

__all__ = ["router"]

router = APIRouter()


class ListBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    value: str
    action: str
    scope: str = "admin"
    expires_at: float | None = None
    note: str = ""
    force: bool = False  # a wide entry needs it, with a reason (audited as lists.force)
    reason: str = ""


class HoldBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    reason: str = ""
    query: dict[str, Any]


@router.get("/lists", tags=["lists"])
def list_entries(svc: Services, caller: Caller, kind: str | None = None,
                 scope: str | None = None, action: str | None = None,
                 active: bool = False) -> list[dict[str, object]]:
    return [entry_dict(e) for e in svc.lists.entries(caller, kind=kind, scope=scope,
                                                     action=action, include_expired=not active)]


@router.post("/lists", tags=["lists"], status_code=201)
def add_entry(svc: Services, caller: Caller, body: ListBody) -> dict[str, object]:
    return entry_dict(svc.lists.add(caller, body.kind, body.value, body.action,
                                    scope=body.scope, expires_at=body.expires_at,
                                    note=body.note, force=body.force, reason=body.reason))


@router.delete("/lists/{entry_id}", tags=["lists"])
def remove_entry(svc: Services, caller: Caller, entry_id: str,
                 reason: str = "") -> dict[str, object]:
    """``reason`` (a query parameter) is required: it is audited with the removal."""
    require(caller, "lists.write")
    return entry_dict(svc.lists.remove(caller, entry_id,
                                       reason=require_reason(reason, "removing a list entry")))


@router.get("/lists/snapshot", tags=["lists"])
def snapshot(svc: Services, caller: Caller) -> dict[str, object]:
    from mailsift.services.access import require

    require(caller, "lists.read")
    snap = svc.lists.snapshot()
    return {"version": snap.version, "taken_at": snap.taken_at,
            "entries": [entry_dict(e) for e in snap.entries]}


@router.get("/holds", tags=["holds"])
def holds(svc: Services, caller: Caller) -> list[dict[str, Any]]:
    return [dataclasses.asdict(h) for h in svc.retention.holds(caller)]


@router.post("/holds", tags=["holds"], status_code=201)
def place_hold(svc: Services, caller: Caller, body: HoldBody) -> dict[str, Any]:
    query = TraceQuery.from_dict(body.query)
    return dataclasses.asdict(svc.retention.place_hold(caller, body.name, query,
                                                       reason=body.reason))


@router.delete("/holds/{hold_id}", tags=["holds"])
def release_hold(svc: Services, caller: Caller, hold_id: str) -> dict[str, str]:
    svc.retention.release_hold(caller, hold_id)
    return {"released": hold_id}


@router.get("/audit", tags=["audit"])
def audit(svc: Services, caller: Caller, actor: str | None = None, action: str | None = None,
          target: str | None = None, since: float | None = None,
          before_id: QueryId = None,
          limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
    """Append-only; page with ``before_id`` = the last id of the previous page."""
    return [e.to_dict() for e in svc.audit.entries(caller, who=actor, action=action,
                                                   target=target, since=since,
                                                   before_id=before_id, limit=limit)]
