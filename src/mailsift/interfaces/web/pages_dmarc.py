"""The DMARC page: what other receivers' aggregate reports say about our domains.

Per domain, what ``p=reject`` would do today (how many messages of the window would be refused,
split into sources that also pass, whose mail would be lost, and sources that never pass); per
sender (From domain and source IP), messages, DMARC pass/fail, SPF and DKIM alignment failures
and the DKIM selectors seen; the reports received; the reports we send. ``/dmarc/senders.csv``
exports the senders table. Admins and analysts (``trace.read``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mailsift.interfaces.web.context import WebContext, page
from mailsift.services.dmarc.senders import DmarcService, sender_verdict
from mailsift.store.dmarc import DmarcStore

__all__ = ["register"]


def _days(request: Request) -> int:
    try:
        return min(max(int(request.query_params.get("days", "7")), 1), 366)
    except ValueError:
        return 7


def _filter(request: Request) -> tuple[int, str | None]:
    """The days and the one domain (None: every domain) the page and its CSV show."""
    domain = str(request.query_params.get("domain", "")).strip().lower() or None
    return _days(request), domain


def register(router: APIRouter, ctx: WebContext) -> None:
    def service() -> DmarcService:
        store = ctx.store
        return DmarcService(DmarcStore(store.engine, store.clock), store.clock,
                            ctx.settings.dmarc_reports.our_domains)

    @router.get("/dmarc")
    @page(ctx)
    def dmarc_page(request: Request) -> Response:
        who = ctx.require(request)
        days, domain = _filter(request)
        svc = service()
        senders = svc.senders(who.principal, days=days, domain=domain)
        return ctx.render(request, "dmarc.html", who, days=days, domain=domain or "",
                          outlook=svc.outlook(who.principal, days=days), senders=senders,
                          verdict=sender_verdict,
                          received=svc.reports(who.principal, days=max(days, 30))[:20],
                          outgoing=svc.outgoing(who.principal, limit=20))

    @router.get("/dmarc/senders.csv")
    @page(ctx)
    def dmarc_csv(request: Request) -> Response:
        who = ctx.require(request)
        days, domain = _filter(request)
        text = service().csv(who.principal, days=days, domain=domain)
        return Response(text, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="dmarc-senders-{days}d.csv"',
            "X-Content-Type-Options": "nosniff"})
