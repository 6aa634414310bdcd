"""``/v1/quarantine``, ``/v1/release-jobs`` and ``/v1/requests``.

A bulk release answers at once with its job (202) and runs in the background; poll
``/v1/release-jobs/{id}``. A dry run answers with the count only.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mailsift.interfaces.http.deps import Caller, PathId, Services, TraceFilter
from mailsift.services.access import NotFound, Principal, require, require_reason
from mailsift.services.store_services import StoreServices
from mailsift.store import TraceQuery

__all__ = ["router"]

router = APIRouter(tags=["quarantine"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReleaseBody(_Body):
    recipients: list[str] | None = Field(None, description="default: every quarantined one")
    rescan: bool = False
    resend_uncertain: bool = Field(False, description="at-least-once for uncertain copies")
    reason: str = ""


class QueryBody(_Body):
    sender: str | None = None
    recipient: str | None = None
    subject: str | None = None
    since: float | None = None
    until: float | None = None
    category: str | None = None
    finding: str | None = None
    artifact: str | None = None
    version: str | None = None


class BulkBody(_Body):
    query: QueryBody
    dry_run: bool = True
    recipients: list[str] | None = None
    rescan: bool = False
    all: bool = Field(False, description="allow an empty query (everything quarantined)")
    reason: str = Field("", description="why (required unless dry_run; audited)")
    confirm_count: int | None = Field(
        None, description="the recipient count the dry run answered: when given, the release "
        "starts only if the query still matches exactly that many")


class RequestBody(_Body):
    recipient: str | None = Field(None, description="ignored for recipient tokens")
    reason: str = ""


class DecisionBody(_Body):
    note: str = ""
    rescan: bool = False


@router.get("/quarantine")
def list_quarantine(svc: Services, caller: Caller, query: TraceFilter,
                    cursor: str | None = None, limit: int = Query(50, ge=1, le=1000)
                    ) -> dict[str, Any]:
    """Quarantined recipients (``status`` defaults to ``quarantined``); recipient tokens see
    only their own mailbox."""
    return svc.quarantine.search(caller, query, cursor=cursor, limit=limit).to_dict()


@router.get("/quarantine/{message}")
def show_quarantine(svc: Services, caller: Caller, message: str) -> dict[str, Any]:
    """Explanation, headers, text and a sanitised HTML preview (inert: no script, no remote
    content, links as text)."""
    return svc.quarantine.show(caller, message).to_dict()


@router.get("/quarantine/{message}/eml", response_class=Response,
            responses={200: {"content": {"message/rfc822": {}}}})
def download_quarantine(svc: Services, caller: Caller, message: str) -> Response:
    raw = svc.quarantine.download(caller, message)
    return Response(raw, media_type="message/rfc822", headers={
        "Content-Disposition": f'attachment; filename="{message}.eml"',
        "X-Content-Type-Options": "nosniff",
    })


@router.delete("/quarantine/{message}")
def delete_quarantine(svc: Services, caller: Caller, message: str,
                      reason: str = "") -> dict[str, Any]:
    """``reason`` (a query parameter) is required: the original is gone for good."""
    require(caller, "quarantine.delete")
    why = require_reason(reason, "deleting an original")
    return {"message": message, "recipients": svc.quarantine.delete(caller, message,
                                                                    reason=why)}


@router.post("/quarantine/{message}/release")
async def release_one(svc: Services, caller: Caller, message: str,
                      body: ReleaseBody) -> dict[str, Any]:
    report = await svc.release.release(caller, message, body.recipients, rescan=body.rescan,
                                       reason=body.reason,
                                       reclaim_uncertain=body.resend_uncertain)
    return report.to_dict()


@router.post("/quarantine/release", status_code=200,
             responses={202: {"description": "bulk release job started"}})
async def release_bulk(request: Request, svc: Services, caller: Caller, body: BulkBody,
                       response: Response) -> dict[str, Any]:
    """Bulk release by query: ``dry_run`` (the default) counts; otherwise a job starts."""
    query = TraceQuery(**body.query.model_dump())
    if not query.to_dict() and not body.all:
        from mailsift.core.errors import InputError

        raise InputError("a bulk release needs a query (or all=true)")
    preview = svc.bulk.preview(caller, query)
    if body.dry_run:
        return {"dry_run": True, **preview.to_dict()}
    reason = require_reason(body.reason, "a bulk release")
    if body.confirm_count is not None and body.confirm_count != preview.recipients:
        from mailsift.core.errors import InputError

        raise InputError(f"the query now matches {preview.recipients} recipient(s), not "
                         f"{body.confirm_count}: run the dry run again")
    job = svc.bulk.start(caller, query, recipients=tuple(body.recipients or ()) or None,
                         rescan=body.rescan, reason=reason)
    _spawn(request, svc, caller, job.id, reclaim=False)
    response.status_code = 202
    return {"dry_run": False, "job": job.to_dict()}


def _spawn(request: Request, svc: StoreServices, caller: Principal, job_id: str, *,
           reclaim: bool) -> None:
    tasks: set[asyncio.Task[Any]] = request.app.state.jobs
    task = asyncio.get_running_loop().create_task(
        svc.bulk.run(caller, job_id, reclaim_uncertain=reclaim))
    tasks.add(task)  # keep a reference: the loop only holds weak ones
    task.add_done_callback(tasks.discard)


@router.get("/release-jobs")
def list_jobs(svc: Services, caller: Caller) -> list[dict[str, Any]]:
    require(caller, "quarantine.release")
    return [j.to_dict() for j in svc.store.jobs.list()]


@router.get("/release-jobs/{job_id}")
def get_job(svc: Services, caller: Caller, job_id: str) -> dict[str, Any]:
    require(caller, "quarantine.release")
    job = svc.store.jobs.get(job_id)
    if job is None:
        raise NotFound(f"no release job {job_id}")
    return {**job.to_dict(), "ledger": svc.store.releases.job_counts(job_id)}


@router.post("/release-jobs/{job_id}/resume", status_code=202)
def resume_job(request: Request, svc: Services, caller: Caller, job_id: str,
               resend_uncertain: bool = False) -> dict[str, Any]:
    require(caller, "quarantine.release")
    job = svc.store.jobs.get(job_id)
    if job is None:
        raise NotFound(f"no release job {job_id}")
    _spawn(request, svc, caller, job_id, reclaim=resend_uncertain)
    return job.to_dict()


@router.post("/quarantine/{message}/requests", status_code=201)
def request_release(svc: Services, caller: Caller, message: str,
                    body: RequestBody) -> dict[str, Any]:
    """A recipient asks for its copy; an admin approves or denies."""
    return svc.quarantine.request_release(caller, message, recipient=body.recipient,
                                          reason=body.reason).to_dict()


@router.get("/requests")
def list_requests(svc: Services, caller: Caller, state: str | None = None
                  ) -> list[dict[str, Any]]:
    return [r.to_dict() for r in svc.quarantine.requests(caller, state=state)]


@router.post("/requests/{request_id}/approve")
async def approve_request(svc: Services, caller: Caller, request_id: PathId,
                          body: DecisionBody) -> dict[str, Any]:
    info, report = await svc.release.decide_request(caller, request_id, approve=True,
                                                    note=body.note, rescan=body.rescan)
    return {"request": info.to_dict(), "release": report.to_dict() if report else None}


@router.post("/requests/{request_id}/deny")
async def deny_request(svc: Services, caller: Caller, request_id: PathId,
                       body: DecisionBody) -> dict[str, Any]:
    info, _ = await svc.release.decide_request(caller, request_id, approve=False,
                                               note=body.note)
    return {"request": info.to_dict(), "release": None}
