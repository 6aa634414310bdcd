"""The dashboard: mail flow, quarantine rate against the breaker's baseline and limit, open
incidents, artifacts in shadow or canary and top findings, each as a chart.

Recipients have no dashboard (they may not read the trace): they land on their quarantine.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mailsift.interfaces.web import charts, stats
from mailsift.interfaces.web.context import WebContext, page, svg

__all__ = ["register"]

#: choosable ranges: hours shown -> bucket size in seconds
RANGES = {6: 900, 24: 3600, 168: 6 * 3600}


def _label(ts: float, bucket: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%H:%M") if bucket < 6 * 3600 else dt.strftime("%a %Hh")


def register(router: APIRouter, ctx: WebContext) -> None:
    @router.get("/")
    @page(ctx)
    def dashboard(request: Request, hours: int = 24) -> Response:
        who = ctx.require(request)
        if not who.can("trace.read"):
            return ctx.redirect("/quarantine")
        actor = who.principal
        hours = hours if hours in RANGES else 24
        bucket = float(RANGES[hours])
        now = ctx.now()
        since = now - hours * 3600
        flow = stats.mail_flow(actor, ctx.store, since=since, until=now, bucket_seconds=bucket)
        labels = [_label(t, bucket) for t in flow.starts]
        rset = ctx.settings.rollout
        base = stats.baseline(actor, ctx.store, rset, now)
        top = stats.top_findings(actor, ctx.store, since=since)
        hits = stats.list_hits(actor, ctx.store, since=since)
        status = ctx.rollout.status()
        staged = [d for d in status["deployments"] if d["state"] in ("shadow", "canary")]
        incidents = status["incidents"]
        findings_chart = charts.hbars(
            [(code, n, "/trace?" + urlencode({"finding": code, "since": f"-{hours}h"}))
             for code, n in top],
            title=f"Top findings, last {hours} h (messages; click to see them)")
        lists_chart = charts.hbars(
            [(code, n, "/trace?" + urlencode({"finding": code, "since": f"-{hours}h"}))
             for code, n in hits],
            title=f"DNS list hits and errors, last {hours} h (messages)",
            empty="no DNS list hit (none configured, or nothing listed)")
        staged_chart = charts.hbars(
            [(f"{d['artifact']}@{d['version']} ({d['state']})",
              (d.get("shadow") or {}).get("changed", 0), "/rollouts") for d in staged],
            title="Artifacts in shadow / canary: verdicts they would change",
            empty="no artifact in shadow or canary")
        incident_chart = charts.hbars(
            [(f"{i['id']} {i['subject']}", i["messages"], f"/incidents/{i['id']}")
             for i in incidents],
            title="Open incidents: affected messages", empty="no open incident")
        window_min = rset.window_buckets * rset.bucket_seconds / 60
        return ctx.render(
            request, "dashboard.html", who, hours=hours, ranges=list(RANGES),
            total=sum(flow.totals), enforced=sum(flow.enforced), base=base,
            window_min=window_min, rset=rset, incidents=incidents, staged=staged,
            flow_category=svg(charts.stacked_bars(labels, flow.by_category,
                                                  title="Mail flow by category")),
            flow_action=svg(charts.stacked_bars(labels, flow.by_action,
                                                title="Mail flow by action")),
            rate_chart=svg(charts.line_chart(
                labels, flow.rates, title="Quarantine rate (quarantined + rejected / scanned)",
                guides=[(base.rate, "breaker baseline", "#2563eb"),
                        (base.limit, f"trip limit ({rset.min_ratio:g} x baseline)",
                         "#b91c1c")])),
            findings_chart=svg(findings_chart), staged_chart=svg(staged_chart),
            lists_chart=svg(lists_chart),
            incident_chart=svg(incident_chart))
