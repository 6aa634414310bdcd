"""Reports: what users say the filter got wrong. The message page's "Report as phishing / spam /
Not junk" form posts here; the Reports page lists reports with filters and, for admins and
analysts, the triage forms (confirm or reject with a note; for a confirmed not-junk report,
optionally release its quarantined copy and allow its sender; for phish or spam, optionally
block the sender). A recipient sees the reports about its mailbox there and may report a message
delivered to it by the reference its copy carries (the ``X-Mailsift-Ref`` header).

Every button is a call on ``ReportService``, which checks the role (and, for a recipient, that
the message was addressed to its mailbox) and writes the audit log.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mailsift.core.errors import InputError
from mailsift.interfaces.http.deps import PathId
from mailsift.interfaces.web.context import Viewer, WebContext, page, parse_time
from mailsift.services.lists import parse_duration
from mailsift.store import ReportInfo
from mailsift.store.reports import LABELS, MAX_COMMENT, REPORT_STATES

__all__ = ["LABEL_NAMES", "message_reports", "register"]

LABEL_NAMES = {"phish": "phishing", "spam": "spam", "ham": "not junk"}


def message_reports(ctx: WebContext, who: Viewer, message: str) -> tuple[ReportInfo, ...]:
    """The reports of one message the viewer may read (a recipient: its own)."""
    if not (who.can("report.read") or who.can("report.read.own")):
        return ()
    return ctx.services.reports.list(who.principal, message=message, limit=50).items


def _back(back: str, message: str) -> str:
    # only our own pages: never a URL taken from the form
    if back in ("quarantine", "trace"):
        return f"/{back}/{quote(message, safe='')}"
    return "/reports"


def register(router: APIRouter, ctx: WebContext) -> None:
    reports = ctx.services.reports
    ctx.env.globals["label_names"] = LABEL_NAMES  # the message page's report form uses them

    @router.get("/reports")
    @page(ctx)
    def report_list(request: Request, cursor: str | None = None) -> Response:
        who = ctx.require(request)
        params = request.query_params
        readers = who.can("report.read")
        # admins and analysts land on what waits for triage; recipients on all their reports
        state = str(params.get("state", "new" if readers else ""))
        label = str(params.get("label", ""))
        since_text = str(params.get("since", "")).strip()
        result = reports.list(who.principal, state=state or None, label=label or None,
                              since=parse_time(since_text, ctx.now()), cursor=cursor)
        waiting = reports.count(who.principal, state="new") if readers else None
        form = {"state": state, "label": label, "since": since_text}
        return ctx.render(request, "reports.html", who, page=result, form=form,
                          states=REPORT_STATES, labels=LABELS, waiting=waiting,
                          max_comment=MAX_COMMENT)

    @router.post("/reports/new")
    @page(ctx)
    async def report_create(request: Request) -> Response:
        who, form = await ctx.posted(request)
        message = str(form.get("message", "")).strip()
        if not message:
            raise InputError("name the message: its reference (X-Mailsift-Ref header)")
        back = _back(str(form.get("back", "")), message)
        info, created = reports.create(who.principal, message, str(form.get("label", "")),
                                       comment=str(form.get("comment", "")),
                                       recipient=str(form.get("recipient", "")) or None)
        name = LABEL_NAMES[info.label]
        if created:
            return ctx.redirect(back, f"reported as {name} (report #{info.id}): thank you, "
                                "an analyst will look at it")
        return ctx.redirect(back, f"already reported as {name} (report #{info.id}, "
                            f"{info.state})")

    @router.post("/reports/{report_id}/triage")
    @page(ctx)
    async def report_triage(request: Request, report_id: PathId) -> Response:
        who, form = await ctx.posted(request)
        decision = str(form.get("decision", ""))
        entry = str(form.get("list_entry", "")) or None
        expires = str(form.get("expires", "")).strip()
        expires_at = ctx.now() + parse_duration(expires) if entry and expires else None
        result = await reports.triage(who.principal, report_id, decision,
                                      note=str(form.get("note", "")),
                                      release=form.get("release") == "yes",
                                      list_entry=entry, expires_at=expires_at)
        parts = [f"report #{report_id} {result.report.state}"]
        err = ""
        if result.release is not None:
            rep = result.release
            if rep.sent:
                parts.append(f"released to {', '.join(rep.sent)}")
            if rep.already:
                parts.append(f"already released: {', '.join(rep.already)}")
            problems = [f"{r}: {why}" for r, why in rep.failed.items()]
            problems += [f"{r}: uncertain" for r in rep.uncertain]
            if problems:
                err = "not released: " + "; ".join(problems)
        if result.entry is not None:
            e = result.entry
            parts.append(f"{e.action} {e.kind} {e.value}"
                         + (" was already listed" if result.entry_existed else " added"))
        return ctx.redirect("/reports?state=" + quote(str(form.get("from_state", "new"))),
                            "; ".join(parts), err=err)
