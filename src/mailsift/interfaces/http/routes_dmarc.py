"""``/v1/dmarc/...``: what the aggregate reports other receivers sent say about our domains
(senders, daily pass/fail, what ``p=reject`` would do, CSV) and the reports we send.

Reading needs an admin or analyst token (``trace.read``). Windows are whole UTC days ending
today (``days``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from mailsift.interfaces.http.deps import Caller, Services
from mailsift.services.dmarc.senders import DmarcService, sender_verdict
from mailsift.store.dmarc import DmarcStore

__all__ = ["router"]

router = APIRouter(tags=["dmarc"])
Days = Query(7, ge=1, le=366, description="whole UTC days ending today")


def _service(svc: Any) -> DmarcService:
    store = svc.store
    return DmarcService(DmarcStore(store.engine, store.clock), store.clock)


@router.get("/dmarc/domains")
def domains(svc: Services, caller: Caller, days: int = Days) -> dict[str, Any]:
    """Per domain: messages, DMARC pass/fail and what p=reject would reject today."""
    return {"days": days,
            "domains": [d.to_dict() for d in _service(svc).outlook(caller, days=days)]}


@router.get("/dmarc/senders")
def senders(svc: Services, caller: Caller, days: int = Days,
            domain: str | None = None) -> dict[str, Any]:
    """Per (From domain, source IP): counts, SPF/DKIM alignment, DKIM selectors."""
    found = _service(svc).senders(caller, days=days, domain=domain)
    return {"days": days, "senders": [{**s.to_dict(), "verdict": sender_verdict(s)}
                                      for s in found]}


@router.get("/dmarc/senders.csv")
def senders_csv(svc: Services, caller: Caller, days: int = Days,
                domain: str | None = None) -> Response:
    text = _service(svc).csv(caller, days=days, domain=domain)
    return Response(text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="dmarc-senders-{days}d.csv"'})


@router.get("/dmarc/daily")
def daily(svc: Services, caller: Caller, days: int = Days,
          domain: str | None = None) -> dict[str, Any]:
    """Pass/fail per UTC day and source IP."""
    return {"days": days, "rows": _service(svc).daily(caller, days=days, domain=domain)}


@router.get("/dmarc/reports")
def ingested(svc: Services, caller: Caller,
             days: int = Query(30, ge=1, le=366)) -> dict[str, Any]:
    """The aggregate reports received (newest first)."""
    return {"reports": _service(svc).reports(caller, days=days)}


@router.get("/dmarc/outgoing")
def outgoing(svc: Services, caller: Caller, state: str | None = None,
             limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    """The aggregate reports we send: one job per policy domain and period."""
    return {"jobs": [j.to_dict() for j in _service(svc).outgoing(caller, state=state,
                                                                  limit=limit)]}
