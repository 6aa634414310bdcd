"""``/v1/messages/{id}/reports`` and ``/v1/reports``: user reports of misjudged messages.

``{id}`` is the trace id of the message (``GET /v1/trace/{id}``), which delivered mail carries in
its ``X-Mailsift-Ref`` header, so a mail client's "report" button can name it. Recipient tokens
report only copies addressed to their own mailbox and read only the reports about that mailbox;
triage is for admin and analyst tokens (see ``services.reports``). Reporting twice answers 200
with the first report instead of 201.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from mailsift.interfaces.http.deps import Caller, PathId, Services
from mailsift.store.reports import MAX_COMMENT

__all__ = ["router"]

router = APIRouter(tags=["reports"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReportBody(_Body):
    label: Literal["phish", "spam", "ham"] = Field(
        description="phish or spam: delivered but bad; ham: not junk (filtered but legitimate)")
    comment: str = Field("", max_length=MAX_COMMENT)
    recipient: str | None = Field(None, description="admins and analysts: report for this "
                                  "recipient of the message; ignored for recipient tokens")


class TriageBody(_Body):
    state: Literal["confirmed", "rejected"]
    note: str = Field("", max_length=MAX_COMMENT)
    release: bool = Field(False, description="confirmed not-junk: release the quarantined copy")
    list_entry: Literal["sender", "domain"] | None = Field(
        None, description="confirmed: allow (ham) or block (phish, spam) the sender or its "
        "domain")
    expires_at: float | None = Field(None, description="expiry of the list entry (epoch s)")


@router.post("/messages/{message}/reports", status_code=201,
             responses={200: {"description": "already reported: the existing report"}})
def create_report(svc: Services, caller: Caller, message: str, body: ReportBody,
                  response: Response) -> dict[str, Any]:
    info, created = svc.reports.create(caller, message, body.label, comment=body.comment,
                                       recipient=body.recipient if not caller.restricted
                                       else None)
    if not created:
        response.status_code = 200
    return {**info.to_dict(), "created": created}


@router.get("/reports")
def list_reports(svc: Services, caller: Caller, state: str | None = None,
                 label: str | None = None,
                 since: float | None = Query(None, description="reported at or after, epoch s"),
                 message: str | None = None, cursor: str | None = None,
                 limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
    """Newest first, keyset-paged (``cursor``); recipient tokens see those about their
    mailbox."""
    return svc.reports.list(caller, state=state, label=label, since=since, message=message,
                            cursor=cursor, limit=limit).to_dict()


@router.get("/reports/{report_id}")
def get_report(svc: Services, caller: Caller, report_id: PathId) -> dict[str, Any]:
    return svc.reports.get(caller, report_id).to_dict()


@router.post("/reports/{report_id}/triage")
async def triage_report(svc: Services, caller: Caller, report_id: PathId,
                        body: TriageBody) -> dict[str, Any]:
    result = await svc.reports.triage(caller, report_id, body.state, note=body.note,
                                      release=body.release, list_entry=body.list_entry,
                                      expires_at=body.expires_at)
    return result.to_dict()
