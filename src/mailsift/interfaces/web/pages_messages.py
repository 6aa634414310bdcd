"""Quarantine and trace pages: search, the explanation of one message, the sanitised preview,
release (all, some recipients), delete, allow the sender, bulk release of a whole query (count,
confirmation, then a resumable job), and release requests. The message page also carries the
"Report as phishing / spam / Not junk" form (``pages_reports``).

The preview is served on its own URL into an iframe with ``sandbox`` (no scripts, a unique
origin) and a CSP that forbids everything but inline styles; its HTML was already rebuilt inert
by ``services.preview``. Three independent layers, so one mistake in any of them loads nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from mailsift.core.errors import InputError
from mailsift.interfaces.http.deps import PathId
from mailsift.interfaces.web.confirm import Preview, confirmed
from mailsift.interfaces.web.context import WebContext, page, secure_headers
from mailsift.interfaces.web.pages_reports import message_reports
from mailsift.interfaces.web.readable import auth_lines
from mailsift.services.access import NotFound, require
from mailsift.services.bulk_release import pending_query
from mailsift.services.lists import parse_duration
from mailsift.services.trace import EXPORT_FORMATS
from mailsift.store import TraceQuery

__all__ = ["PREVIEW_CSP", "register"]

PREVIEW_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "
               "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox")
_PREVIEW_DOC = ('<!doctype html><html><head><meta charset="utf-8"><style>body{{font:14px '
                'sans-serif;margin:8px;color:#111;overflow-wrap:anywhere}}</style></head>'
                '<body>{}</body></html>')


def _explain_values(rec: Any) -> dict[str, Any]:
    """What the explanation partial shows, from a stored ``MessageRecord``."""
    verdict = rec.verdict or {}
    return {"rec": rec, "verdict": verdict, "findings": list(rec.findings),
            "reasons": set(verdict.get("reasons") or ()), "auth": rec.auth,
            "auth_lines": auth_lines(rec.auth), "overrides": verdict.get("overrides") or []}


def _list_page(ctx: WebContext, request: Request, template: str, who: Any, search: Any,
               count: Any, cursor: str | None, **extra: Any) -> Response:
    """A search result page (trace or quarantine): the form refilled, the sort, the page size
    and the links to the first, previous and next page."""
    params = request.query_params
    query = ctx.query_from(params)
    listing = ctx.listing(params)
    result = search(who.principal, query, cursor=cursor, limit=listing["size"],
                    sort=listing["sort"], descending=listing["order"] == "desc")
    form = ctx.form_values(params)
    return ctx.render(request, template, who, page=result, count=count(who.principal, query),
                      form=form, query=query, listing=listing,
                      base_qs=urlencode({**{k: v for k, v in form.items() if v},
                                         "size": listing["size"]}),
                      page_qs=urlencode({**{k: v for k, v in form.items() if v}, **listing}),
                      first_page=cursor is not None, **extra)


def _delivery(ctx: WebContext, who: Any, rec: Any) -> list[Any]:
    return ctx.services.trace.delivery(who.principal, rec) if who.can("trace.read") else []


def narrowing(query: TraceQuery) -> bool:
    """Does the query narrow anything down besides action and status (which a bulk release
    sets itself)? A query that does not would release everything quarantined."""
    return bool({k for k in query.to_dict() if k not in ("action", "status")})


def held_query(query: TraceQuery) -> TraceQuery | None:
    """The still-quarantined recipients among what ``query`` matches; ``None`` when its own
    action or status filter excludes them (``action=junk`` matches no quarantined copy)."""
    if query.action not in (None, "quarantine") or query.status not in (None, "quarantined"):
        return None
    return pending_query(query)


def register(router: APIRouter, ctx: WebContext) -> None:
    svc = ctx.services

    # -- quarantine -----------------------------------------------------------------------------
    @router.get("/quarantine")
    @page(ctx)
    def quarantine(request: Request, cursor: str | None = None) -> Response:
        who = ctx.require(request)
        query = ctx.query_from(request.query_params)
        form = ctx.form_values(request.query_params)
        narrow = {k: v for k, v in form.items() if v and k not in ("action", "status")}
        # the bulk release covers still-quarantined copies: a status filter that excludes them
        # (released, deleted) offers none
        bulk_link = "/bulk?" + urlencode(narrow) if narrow and held_query(query) else ""
        return _list_page(ctx, request, "quarantine.html", who, svc.quarantine.search,
                          svc.quarantine.count, cursor, bulk_link=bulk_link)

    @router.get("/quarantine/{message}")
    @page(ctx)
    def quarantine_message(request: Request, message: str) -> Response:
        who = ctx.require(request)
        view = svc.quarantine.show(who.principal, message)
        rec = view.record
        held = [r for r in rec.recipients if r.action == "quarantine"]
        # the service scopes the list: a recipient sees only its own requests
        requests = [r for r in svc.quarantine.requests(who.principal) if r.message == message]
        return ctx.render(request, "message.html", who, view=view, held=held,
                          mode="quarantine", requests=requests,
                          delivery=_delivery(ctx, who, rec),
                          reports=message_reports(ctx, who, message), **_explain_values(rec))

    @router.get("/quarantine/{message}/preview")
    @page(ctx)
    def preview(request: Request, message: str) -> Response:
        who = ctx.require(request)
        view = svc.quarantine.show(who.principal, message)
        body = view.preview_html or "<p><i>(no HTML part)</i></p>"
        response = HTMLResponse(_PREVIEW_DOC.format(body))
        secure_headers(response, PREVIEW_CSP)
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        return response

    @router.get("/quarantine/{message}/eml")
    @page(ctx)
    def download(request: Request, message: str) -> Response:
        who = ctx.require(request)
        raw = svc.quarantine.download(who.principal, message)
        return Response(raw, media_type="message/rfc822", headers={
            "Content-Disposition": f'attachment; filename="{message}.eml"',
            "X-Content-Type-Options": "nosniff"})

    @router.post("/quarantine/{message}/release")
    @page(ctx)
    async def release(request: Request, message: str) -> Response:
        who, form = await ctx.posted(request)
        chosen = [str(r) for r in form.getlist("recipients")]  # type: ignore[attr-defined]
        report = await svc.release.release(who.principal, message, chosen or None,
                                           reason=str(form.get("reason", "")),
                                           rescan=False)
        parts = []
        if report.sent:
            parts.append(f"released to {', '.join(report.sent)}")
        if report.already:
            parts.append(f"already released: {', '.join(report.already)}")
        if report.failed or report.uncertain:
            problems = [f"{r}: {why}" for r, why in report.failed.items()]
            problems += [f"{r}: uncertain" for r in report.uncertain]
            return ctx.redirect(f"/quarantine/{message}", "; ".join(parts),
                                err="not released: " + "; ".join(problems))
        return ctx.redirect(f"/quarantine/{message}", "; ".join(parts) or "nothing to release")

    @router.post("/quarantine/{message}/delete")
    @page(ctx)
    async def delete(request: Request, message: str) -> Response:
        who, form = await ctx.posted(request)
        require(who.principal, "quarantine.delete")
        rec = svc.quarantine.record(who.principal, message)
        held = [r.recipient for r in rec.recipients if r.status == "quarantined"]
        answer = confirmed(ctx, request, who, form, Preview(
            title=f"Delete the original of “{rec.subject or '(no subject)'}”", verb="delete",
            count=len(held), noun="quarantined copies",
            sample=[(f"{r} ({rec.from_header or rec.mail_from or '<>'})", "") for r in held],
            note="The original is deleted for good: it can no longer be released. The trace "
                 "record stays (status deleted).", back=f"/quarantine/{message}"))
        if isinstance(answer, Response):
            return answer
        n = svc.quarantine.delete(who.principal, message, reason=answer)
        return ctx.redirect("/quarantine", f"deleted {message} ({n} recipient(s))")

    @router.post("/quarantine/{message}/allow")
    @page(ctx)
    async def allow_sender(request: Request, message: str) -> Response:
        who, form = await ctx.posted(request)
        rec = svc.quarantine.record(who.principal, message)
        kind = str(form.get("kind", "sender"))
        # Sender and domain entries are matched against the From address (policy/lists.py),
        # never the envelope sender (often a bounce address at the sender's mail provider):
        # an allow made from the envelope would silently never apply.
        sender = (rec.recipients[0].from_addr if rec.recipients else "").lower() \
            or (rec.mail_from or "").lower()
        if not sender:
            raise InputError("this message has no sender address to allow")
        value = sender if kind == "sender" else sender.rpartition("@")[2]
        duration = str(form.get("expires", "")).strip()
        expires = ctx.now() + parse_duration(duration) if duration else None
        entry = svc.lists.add(who.principal, kind, value, "allow", expires_at=expires,
                              note=f"from quarantined message {message}")
        return ctx.redirect(f"/quarantine/{message}",
                            f"allowed {entry.kind} {entry.value}"
                            + (f" until expiry ({duration})" if duration else ""))

    @router.post("/quarantine/{message}/request")
    @page(ctx)
    async def request_release(request: Request, message: str) -> Response:
        who, form = await ctx.posted(request)
        info = svc.quarantine.request_release(who.principal, message,
                                              recipient=str(form.get("recipient", "")) or None,
                                              reason=str(form.get("reason", "")))
        return ctx.redirect(f"/quarantine/{message}",
                            f"release requested for {info.recipient}: an administrator decides")

    # -- bulk release of a whole query ----------------------------------------------------------
    def bulk_page(request: Request, who: Any, params: Any, *, problem: str = "",
                  reason: str = "") -> Response:
        query = ctx.query_from(params)
        narrowed = narrowing(query)
        if narrowed and query.until is None:
            # pinned now, so the count confirmed is the count released
            query = dataclasses.replace(query, until=ctx.now())
        preview = svc.bulk.preview(who.principal, query) if narrowed and \
            held_query(query) is not None else None
        sample = svc.quarantine.search(who.principal, pending_query(query), limit=5).items \
            if preview is not None and preview.recipients else ()
        return ctx.render(request, "bulk.html", who, http_status=400 if problem else 200,
                          preview=preview, query=query, form=ctx.form_values(params),
                          empty=not narrowed, sample=sample, problem=problem, reason=reason)

    @router.get("/bulk")
    @page(ctx)
    def bulk_confirm(request: Request) -> Response:
        who = ctx.require(request)
        require(who.principal, "quarantine.release")
        return bulk_page(request, who, request.query_params)

    @router.post("/bulk")
    @page(ctx)
    async def bulk_start(request: Request) -> Response:
        who, form = await ctx.posted(request)
        require(who.principal, "quarantine.release")
        query = ctx.query_from(form)
        if not narrowing(query) or held_query(query) is None:
            # never "everything in quarantine" from a link or a hand-made form
            raise InputError("a bulk release needs a query (sender, recipient, rule, time...): "
                             "an empty one would release everything in quarantine")
        preview = svc.bulk.preview(who.principal, query)
        reason = str(form.get("reason", "")).strip()
        if str(form.get("confirm", "")) != str(preview.recipients) or not preview.recipients:
            return bulk_page(request, who, form, reason=reason, problem=(
                f"the count changed since the preview (now {preview.recipients}): check again "
                "and confirm"))
        if not reason:
            return bulk_page(request, who, form, problem="a reason is required (it is audited)")
        job = svc.bulk.start(who.principal, query, reason=reason)
        task = asyncio.get_running_loop().create_task(svc.bulk.run(who.principal, job.id))
        ctx.jobs.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(ctx.jobs.discard)
        return ctx.redirect(f"/jobs/{job.id}", f"bulk release started: {job.total} recipient(s)")

    @router.get("/jobs/{job_id}")
    @page(ctx)
    def job(request: Request, job_id: str) -> Response:
        who = ctx.require(request)
        require(who.principal, "quarantine.release")
        info = svc.store.jobs.get(job_id)
        if info is None:
            raise NotFound(f"no release job {job_id}")
        running = info.state in ("pending", "running")
        response = ctx.render(request, "job.html", who, job=info, query=info.query,
                              running=running)
        if running:  # follow the progress without JavaScript
            response.headers["Refresh"] = "2"
        return response

    # -- release requests -----------------------------------------------------------------------
    @router.get("/requests")
    @page(ctx)
    def requests(request: Request, state: str = "pending") -> Response:
        who = ctx.require(request)
        items = svc.quarantine.requests(who.principal, state=state or None)
        return ctx.render(request, "requests.html", who, items=items, state=state,
                          rows=svc.quarantine.request_rows(who.principal, items))

    @router.post("/requests/{request_id}/{decision}")
    @page(ctx)
    async def decide(request: Request, request_id: PathId, decision: str) -> Response:
        who, form = await ctx.posted(request)
        if decision not in ("approve", "deny"):
            raise InputError("approve or deny")
        info, report = await svc.release.decide_request(
            who.principal, request_id, approve=decision == "approve",
            note=str(form.get("note", "")))
        msg = f"request {request_id} {info.state}"
        if report is not None and report.sent:
            msg += f": released to {', '.join(report.sent)}"
        return ctx.redirect("/requests", msg)

    # -- trace ----------------------------------------------------------------------------------
    @router.get("/trace")
    @page(ctx)
    def trace(request: Request, cursor: str | None = None) -> Response:
        who = ctx.require(request)
        query = ctx.query_from(request.query_params)
        # the quarantined among what matches: with "action=junk" that is none (the action
        # filter counts), not every quarantined message of the other filters
        quarantined = held_query(query)
        held = svc.trace.count(who.principal, quarantined) if quarantined else (0, 0)
        form = ctx.form_values(request.query_params)
        narrow = {k: v for k, v in form.items() if v and k not in ("action", "status")}
        return _list_page(ctx, request, "trace.html", who, svc.trace.search, svc.trace.count,
                          cursor, held=held,
                          bulk_link="/bulk?" + urlencode(narrow) if narrow else "")

    @router.get("/trace/export")
    @page(ctx)
    def export(request: Request, format: str = "csv") -> Response:
        """The whole search as CSV or JSON, streamed a page at a time; audited."""
        who = ctx.require(request)
        query = ctx.query_from(request.query_params)
        listing = ctx.listing(request.query_params)
        chunks = svc.trace.export(who.principal, query, format, sort=listing["sort"],
                                  descending=listing["order"] == "desc")
        stamp = datetime.fromtimestamp(ctx.now(), UTC).strftime("%Y%m%d-%H%M%S")
        return StreamingResponse(chunks, media_type=EXPORT_FORMATS[format], headers={
            "Content-Disposition": f'attachment; filename="mailsift-trace-{stamp}.{format}"',
            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})

    @router.get("/trace/{message}")
    @page(ctx)
    def trace_message(request: Request, message: str) -> Response:
        who = ctx.require(request)
        rec = svc.trace.get(who.principal, message)
        held = [r for r in rec.recipients if r.action == "quarantine"]
        return ctx.render(request, "message.html", who, view=None, held=held, mode="trace",
                          requests=[], reports=message_reports(ctx, who, message),
                          delivery=_delivery(ctx, who, rec), **_explain_values(rec))
