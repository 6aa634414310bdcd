"""The dashboard: mail flow in one-minute buckets (five-minute for a day, hourly for a week),
the quarantine rate, the circuit breaker's view per rule and category (each subject's rate
against its own trip line, judged as the breaker judges it), open incidents, artifacts in
shadow or canary and top findings, each as a chart.

The breaker never trips on the overall quarantine rate: it judges each rule, artifact version
and category against that subject's own baseline, needs ``min_hits`` and a p-value below
``alpha``, and only alerts (no incident) for an established subject. A chart that drew the
overall rate against "3 x the overall baseline" showed 7% against a 0.3% line while "open
incidents" said 0 (issue 24); the charts and tiles now show what the breaker judges, and say
why a subject over its line has no incident (established: alert only; breaker warming up).

Recipients have no dashboard (they may not read the trace): they land on their quarantine.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mailsift.interfaces.web import charts, stats
from mailsift.interfaces.web.context import WebContext, page, svg

__all__ = ["register"]

#: choosable ranges: hours shown -> bucket size in seconds (one minute for the last hours,
#: so a one-minute spike is one bar, not a fifteenth of one)
RANGES = {1: 60, 6: 60, 24: 300, 168: 3600}


def _label(ts: float, bucket: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%H:%M") if bucket < 3600 else dt.strftime("%a %Hh")


def breaker_status(rate: stats.SubjectRate, view: stats.BreakerView, *, young: bool,
                   incident: str | None, warmup: int) -> tuple[str, str]:
    """(css class, what the breaker does about this subject now), in plain words."""
    j = rate.judgement
    if incident:
        return "alarm", f"tripped: incident {incident} is open"
    if not j.trip:
        return "", f"below its trip line ({j.reason})"
    if young:
        return "alarm", ("trips: young (promoted recently), so the breaker demotes it and "
                         "opens an incident at its next check")
    if view.warm:
        return "warn", ("trips, alert only: established, so it is not demoted and no incident "
                        "opens (a spike there may be a real campaign): review the alerts")
    return "warn", (f"over its trip line but not judged: the breaker is warming up "
                    f"({view.base_scanned} of {warmup} messages in its baseline window); "
                    "established rules and categories are judged once it is warm")


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
        view = stats.breaker_view(actor, ctx.store, rset, now=now, since=since,
                                  bucket_seconds=bucket)
        subjects: list[dict[str, Any]] = []
        for rate in view.subjects:
            open_incident = ctx.store.rollout.open_incident_for(rate.subject)
            css, text = breaker_status(
                rate, view, young=rate.judgement.trip and ctx.rollout.young(rate.subject),
                incident=open_incident.id if open_incident else None,
                warmup=rset.warmup_messages)
            subjects.append({"rate": rate, "css": css, "status": text, "chart": svg(
                charts.line_chart(
                    labels, rate.rates, name=f"{rate.subject}, {window_min:g}-min window",
                    title=f"{rate.subject}: quarantined or rejected share of mail over the "
                          f"breaker's {window_min:g}-minute window",
                    guides=[(rate.judgement.baseline, "its baseline", "#2563eb"),
                            (rate.limit, f"trip line ({rset.min_ratio:g} x baseline)",
                             "#b91c1c")],
                    marks=rate.trips))})
        tripping = [r for r in view.subjects if r.judgement.trip]
        day_ago = now - 86400
        alerts = [a for a in ctx.store.rollout.alerts(200)
                  if a.kind.startswith("breaker_") and a.at >= day_ago]
        return ctx.render(
            request, "dashboard.html", who, hours=hours, ranges=list(RANGES),
            total=sum(flow.totals), enforced=sum(flow.enforced), base=base,
            window_min=window_min, rset=rset, incidents=incidents, staged=staged,
            bucket_label=f"{bucket / 60:g}-minute" if bucket < 3600 else
            f"{bucket / 3600:g}-hour", subjects=subjects, tripping=tripping,
            breaker_alerts=alerts, view=view,
            flow_category=svg(charts.stacked_bars(labels, flow.by_category,
                                                  title="Mail flow by category")),
            flow_action=svg(charts.stacked_bars(labels, flow.by_action,
                                                title="Mail flow by action")),
            rate_chart=svg(charts.line_chart(
                labels, flow.rates, title="Quarantine rate (quarantined + rejected / scanned)",
                guides=[(base.rate, "overall baseline", "#2563eb")])),
            findings_chart=svg(findings_chart), staged_chart=svg(staged_chart),
            lists_chart=svg(lists_chart),
            incident_chart=svg(incident_chart))
