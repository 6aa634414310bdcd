"""Lists, rollouts and incidents: allow/block entries with expiry; artifact versions with their
state, gate report and shadow diff, and the promote/rollback buttons; incidents with their
affected messages and the one-click incident release. Every button is a call on
``ListService`` or ``RolloutService`` (which check permissions and write the audit log).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from mailsift.core.errors import InputError
from mailsift.core.lists import LIST_KINDS
from mailsift.core.rollout import CanaryScope
from mailsift.interfaces.http.deps import QueryId
from mailsift.interfaces.web.confirm import Preview, confirmed
from mailsift.interfaces.web.context import WebContext, fmt_time, page, parse_time
from mailsift.interfaces.web.readable import audit_summary
from mailsift.rollout.gate import shadow_problem
from mailsift.services.access import NotFound, require
from mailsift.services.lists import parse_duration

__all__ = ["register"]


def _scope(form: Any) -> CanaryScope | None:
    items = [s.strip() for s in str(form.get("scope", "")).replace(",", " ").split() if s]
    if not items:
        return None
    recipients = tuple(s for s in items if "@" in s and not s.startswith("@"))
    domains = tuple(s.lstrip("@") for s in items if s.startswith("@") or
                    ("@" not in s and not s.endswith("%")))
    percent = next((float(s[:-1]) for s in items if s.endswith("%")), 0.0)
    return CanaryScope(recipients, domains, percent)


def register(router: APIRouter, ctx: WebContext) -> None:
    svc = ctx.services

    # -- lists ----------------------------------------------------------------------------------
    @router.get("/lists")
    @page(ctx)
    def lists(request: Request, kind: str = "", action: str = "") -> Response:
        who = ctx.require(request)
        entries = svc.lists.entries(who.principal, kind=kind or None, action=action or None)
        return ctx.render(request, "lists.html", who, entries=entries, kinds=LIST_KINDS,
                          kind=kind, action=action, now=ctx.now())

    @router.post("/lists/add")
    @page(ctx)
    async def lists_add(request: Request) -> Response:
        who, form = await ctx.posted(request)
        expires = str(form.get("expires", "")).strip()
        expires_at = None
        if expires:
            expires_at = (ctx.now() + parse_duration(expires) if expires[-1:].isalpha()
                          else parse_time(expires, ctx.now()))
        entry = svc.lists.add(who.principal, str(form.get("kind", "")),
                              str(form.get("value", "")), str(form.get("action", "")),
                              scope=str(form.get("scope", "admin")) or "admin",
                              expires_at=expires_at, note=str(form.get("note", "")),
                              force=bool(form.get("force")),
                              reason=str(form.get("reason", "")))
        return ctx.redirect("/lists", f"added {entry.action} {entry.kind} {entry.value}")

    @router.post("/lists/{entry_id}/remove")
    @page(ctx)
    async def lists_remove(request: Request, entry_id: str) -> Response:
        who, form = await ctx.posted(request)
        require(who.principal, "lists.write")
        entry = next((e for e in svc.lists.entries(who.principal) if e.entry_id == entry_id),
                     None)
        if entry is None:
            raise NotFound(f"no list entry {entry_id}")
        expiry = f", expires {fmt_time(entry.expires_at)} UTC" if entry.expires_at else ""
        answer = confirmed(ctx, request, who, form, Preview(
            title=f"Remove the {entry.action} entry {entry.kind} {entry.value}", verb="remove",
            count=1, noun="list entry",
            sample=[(f"{entry.action} {entry.kind} {entry.value} (scope {entry.scope}"
                     f"{expiry}; by {entry.author or '-'})" + (f": {entry.note}"
                                                               if entry.note else ""), "")],
            note=("Mail from it is judged without this "
                  + ("allow: it may be junked or quarantined again." if entry.action == "allow"
                     else "block: it may be delivered again.")), back="/lists"))
        if isinstance(answer, Response):
            return answer
        entry = svc.lists.remove(who.principal, entry_id, reason=answer)
        return ctx.redirect("/lists", f"removed {entry.action} {entry.kind} {entry.value}")

    # -- rollouts -------------------------------------------------------------------------------
    @router.get("/rollouts")
    @page(ctx)
    def rollouts(request: Request) -> Response:
        who = ctx.require(request)
        require(who.principal, "rollout.read")
        status = ctx.rollout.status()
        budget = ctx.settings.rollout.traffic_budget
        for dep in status["deployments"]:
            kind, _, name = dep["artifact"].partition(":")
            row = ctx.store.rollout.row(kind, name, dep["version"]) or {}
            dep["gate_full"] = gate = json.loads(row.get("gate_json") or "null")
            dep["name"] = name
            # beside the gate's verdict, what would make a pass misleading: no evidence about
            # legitimate mail, or a shadow diff that has grown past the budget since
            warnings = []
            if gate and gate.get("passed") and not gate.get("known_good"):
                warnings.append("no evidence: the gate replayed 0 known-good messages")
            shadow = shadow_problem(dep.get("shadow") or {}, budget)
            if gate and gate.get("passed") and shadow and shadow not in gate.get("reasons", []):
                warnings.append("since the gate ran, the " + shadow)
            dep["gate_warnings"] = warnings
            dep["shadow_problem"] = shadow
        # a rollback button only where a rollback can work (an earlier version that acted)
        rollbacks = []
        names = sorted({f"rules:{d['name']}" for d in status["deployments"]
                        if d["artifact"].startswith("rules:")})
        if any(d["artifact"].startswith("model:") for d in status["deployments"]):
            names.append("model")
        if any(d["artifact"] == "mailflow:rules" for d in status["deployments"]):
            names.append("mailflow:rules")
        for target in names:
            try:
                current, back = ctx.rollout.rollback_plan(target)
            except InputError:
                continue
            rollbacks.append({"name": target, "id": target.partition(":")[2] or target,
                              "current": current, "back": back})
        return ctx.render(request, "rollouts.html", who, status=status, rollbacks=rollbacks)

    @router.post("/rollouts/check")
    @page(ctx)
    async def rollout_check(request: Request) -> Response:
        who, form = await ctx.posted(request)
        name, version = str(form.get("name", "")), str(form.get("version", "")) or None
        # The gate replays corpora through two pipelines: seconds of CPU, off the event loop.
        report = await run_in_threadpool(ctx.rollout.check, who.principal, name, version)
        what = f"gate for {name}@{version or 'latest'}"
        if not report.passed:
            return ctx.redirect("/rollouts", err=f"{what} refused: " + "; ".join(report.reasons))
        if not report.known_good:  # a pass over no legitimate mail is no green light
            return ctx.redirect("/rollouts", err=f"{what} passed without evidence: it replayed "
                                "0 known-good messages; add [rollout] known_good corpora or "
                                "confirm not-junk reports before promoting")
        return ctx.redirect("/rollouts", f"{what} passed")

    @router.post("/rollouts/promote")
    @page(ctx)
    async def rollout_promote(request: Request) -> Response:
        who, form = await ctx.posted(request)
        to = str(form.get("to", "active"))
        dep = ctx.rollout.promote(who.principal, str(form.get("name", "")),
                                  str(form.get("version", "")) or None, to=to,
                                  scope=_scope(form) if to == "canary" else None,
                                  force=form.get("force") == "yes",
                                  reason=str(form.get("reason", "")))
        shadow = ctx.rollout.shadow_rules(dep)
        note = (f"; {len(shadow)} rule(s) stay in shadow: {', '.join(shadow)}"
                if shadow else "")
        return ctx.redirect("/rollouts",
                            f"{dep.artifact}@{dep.version} is now {dep.state.value}{note}")

    def version_preview(who: Any, form: Any, verb: str, title: str, note: str,
                        states: tuple[str, ...]) -> Preview:
        dep = ctx.rollout.registry.find(str(form.get("name", "")),
                                        str(form.get("version", "")) or None)
        if dep.state.value not in states:  # say so before asking for a reason
            done = "withdrawn" if verb == "withdraw" else f"{verb}d"
            raise InputError(f"{dep.artifact}@{dep.version} is {dep.state.value}: only a "
                             f"{' or '.join(states)} version can be {done}"
                             + (" (the active one is rolled back instead)"
                                if dep.state.value == "active" else ""))
        scope = f"; canary scope {', '.join(dep.scope.members())}" if dep.scope else ""
        return Preview(title=f"{title} {dep.artifact}@{dep.version}", verb=verb, count=1,
                       noun="version", sample=[(f"{dep.artifact}@{dep.version}: "
                                                f"{dep.state.value}{scope}", "")],
                       fields={"name": dep.artifact, "version": dep.version}, note=note,
                       back="/rollouts")

    @router.post("/rollouts/withdraw")
    @page(ctx)
    async def rollout_withdraw(request: Request) -> Response:
        who, form = await ctx.posted(request)
        require(who.principal, "rollout.write")
        answer = confirmed(ctx, request, who, form, version_preview(
            who, form, "withdraw", "Withdraw the canary",
            "It stops acting on its canary scope at once and goes back to shadow, where its "
            "verdicts are still recorded.", ("canary",)))
        if isinstance(answer, Response):
            return answer
        dep = ctx.rollout.withdraw(who.principal, str(form.get("name", "")),
                                   str(form.get("version", "")) or None, reason=answer)
        return ctx.redirect("/rollouts", f"{dep.artifact}@{dep.version} withdrawn to shadow")

    @router.post("/rollouts/retire")
    @page(ctx)
    async def rollout_retire(request: Request) -> Response:
        who, form = await ctx.posted(request)
        require(who.principal, "rollout.write")
        answer = confirmed(ctx, request, who, form, version_preview(
            who, form, "retire", "Retire",
            "It stops running (no shadow verdicts, no canary); its local copy stays.",
            ("shadow", "canary")))
        if isinstance(answer, Response):
            return answer
        dep = ctx.rollout.retire(who.principal, str(form.get("name", "")),
                                 str(form.get("version", "")) or None, reason=answer)
        return ctx.redirect("/rollouts", f"{dep.artifact}@{dep.version} retired")

    @router.post("/rollouts/rollback")
    @page(ctx)
    async def rollout_rollback(request: Request) -> Response:
        who, form = await ctx.posted(request)
        require(who.principal, "rollout.write")
        name = str(form.get("name", ""))
        current, back = ctx.rollout.rollback_plan(name)
        answer = confirmed(ctx, request, who, form, Preview(
            title=f"Roll back {current.artifact}", verb="roll back", count=1,
            noun="active version",
            sample=[(f"{current.artifact}@{current.version} (active) is retired", ""),
                    (f"{back.artifact}@{back.version} acts again", "")],
            fields={"name": name}, back="/rollouts",
            note="Every node reloads its scan workers with the earlier version."))
        if isinstance(answer, Response):
            return answer
        done = ctx.rollout.rollback(who.principal, name, reason=answer)
        return ctx.redirect("/rollouts", f"{done.artifact} rolled back to {done.version}")

    @router.post("/rollouts/rule")
    @page(ctx)
    async def rollout_rule(request: Request) -> Response:
        who, form = await ctx.posted(request)
        rule, state = str(form.get("rule", "")).strip(), str(form.get("state", "")) or None
        reason = str(form.get("reason", ""))
        if state in (None, "retired"):  # the rule stops acting, or loses its override
            if not rule:
                raise InputError("which rule? (its finding code, e.g. RULE_X)")
            what = "retire" if state else "clear the override of"
            answer = confirmed(ctx, request, who, form, Preview(
                title=f"{what.capitalize()} rule {rule}", verb=what, count=1, noun="rule",
                sample=[(rule, f"/trace?finding={quote(rule)}")],
                fields={"rule": rule, "state": state or "",
                        "force": str(form.get("force", ""))},
                note=("The rule stops acting on mail (its pack keeps it)." if state else
                      "The rule goes back to the state of its pack's version."),
                back="/rollouts"))
            if not isinstance(answer, str):
                return answer
            reason = answer
        # the rule's own gate replays corpora (seconds of CPU): off the event loop
        await run_in_threadpool(ctx.rollout.set_rule, who.principal, rule, state,
                                reason=reason, force=form.get("force") == "yes")
        return ctx.redirect("/rollouts", f"rule {rule}: {state or 'override cleared'}")

    # -- audit log ------------------------------------------------------------------------------
    @router.get("/audit")
    @page(ctx)
    def audit(request: Request, actor: str = "", action: str = "", target: str = "",
              before_id: QueryId = None) -> Response:
        who = ctx.require(request)
        entries = svc.audit.entries(who.principal, who=actor or None, action=action or None,
                                    target=target or None, before_id=before_id, limit=100)
        return ctx.render(request, "audit.html", who, entries=entries, summary=audit_summary,
                          form={"actor": actor, "action": action, "target": target},
                          next_id=entries[-1].id if len(entries) == 100 else None)

    # -- incidents ------------------------------------------------------------------------------
    @router.get("/incidents")
    @page(ctx)
    def incidents(request: Request) -> Response:
        who = ctx.require(request)
        require(who.principal, "rollout.read")
        items = ctx.store.rollout.incidents()
        return ctx.render(request, "incidents.html", who, items=items,
                          alerts=ctx.store.rollout.alerts(30))

    @router.get("/incidents/{incident}")
    @page(ctx)
    def incident(request: Request, incident: str) -> Response:
        who = ctx.require(request)
        require(who.principal, "rollout.read")
        info = ctx.store.rollout.incident(incident)
        if info is None:
            raise NotFound(f"no incident {incident}")
        members = []
        for message, outcome in ctx.store.rollout.incident_messages(incident):
            rec = ctx.store.trace.get(message)
            members.append((message, outcome, rec))
        return ctx.render(request, "incident.html", who, info=info, members=members,
                          kinds=LIST_KINDS)

    @router.post("/incidents/{incident}/release")
    @page(ctx)
    async def incident_release(request: Request, incident: str) -> Response:
        who, form = await ctx.posted(request)
        require(who.principal, "quarantine.release")
        info = ctx.store.rollout.incident(incident)
        if info is None:
            raise NotFound(f"no incident {incident}")
        todo = [m for m, outcome in ctx.store.rollout.incident_messages(incident)
                if outcome != "released"]
        sample = []
        for message in todo[:5]:
            rec = ctx.store.trace.get(message)
            sample.append((f"{(rec.subject if rec else '') or '(no subject)'} "
                           f"({rec.from_header if rec else message})", f"/trace/{message}"))
        answer = confirmed(ctx, request, who, form, Preview(
            title=f"Release incident {incident} ({info.subject})", verb="re-scan and release",
            count=len(todo), noun="messages", sample=sample, back=f"/incidents/{incident}",
            note="Each message is scanned again with the current rules; those no longer "
                 "quarantined are released, once per recipient (the release ledger)."))
        if isinstance(answer, Response):
            return answer
        summary = await ctx.rollout.release_incident(who.principal, incident, reason=answer)
        return ctx.redirect(
            f"/incidents/{incident}",
            "incident release: {released} released, {kept} kept by the re-scan, "
            "{already} already released, {failed} failed, {skipped} skipped".format(**summary))

    @router.post("/incidents/{incident}/allow")
    @page(ctx)
    async def incident_allow(request: Request, incident: str) -> Response:
        who, form = await ctx.posted(request)
        try:
            hours = float(str(form.get("hours", "24")))
        except ValueError as exc:
            raise InputError("hours must be a number") from exc
        entry = ctx.rollout.incident_allow(who.principal, incident, str(form.get("kind", "")),
                                           str(form.get("value", "")), hours=hours,
                                           note=str(form.get("note", "")))
        return ctx.redirect(f"/incidents/{incident}",
                            f"incident allow {entry.kind} {entry.value} for {hours:g} h")
