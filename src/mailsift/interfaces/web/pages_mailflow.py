"""The flow-rules page (issue 23): the enforced mail-flow rules with their mode, priority and
version, their hits (each a link to the trace pivoted by the rule), the registry's versions, an
editor and a tester.

* **Edit** (admin, ``rollout.write``): the rule set as a rule file. A submitted text is validated
  whole (errors name ``rules:LINE``; nothing is staged unless all of it is valid) and staged as a
  new version in shadow, audited as ``rollout.stage``. Like any version it then enforces only
  after the gate and a promotion (the Rollouts page, or ``mailsift rollout``).
* **Test** (``rollout.read``): a stored message (its trace reference) or an uploaded ``.eml``,
  scanned offline (no DNS checks) by the real pipeline, then the enforced rules or the edited
  text; shows what each rule did or would have done. Nothing is recorded or delivered.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mailsift.core.envelope import Connection, Envelope
from mailsift.core.errors import ConfigError, InputError
from mailsift.interfaces.web.context import WebContext, page
from mailsift.mailflow.loader import parse_rules, rules_text
from mailsift.mailflow.step import FlowStep
from mailsift.mailflow.versions import (
    CONFIG_VERSION,
    FLOW_ARTIFACT,
    FLOW_KIND,
    FLOW_NAME,
    load_version,
)
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.services.access import require
from mailsift.services.mailflow import flow_report, list_rules
from mailsift.store.query import TraceQuery

__all__ = ["register"]

_MAX_UPLOAD = 10 * 1024 * 1024


def register(router: APIRouter, ctx: WebContext) -> None:
    scanner: dict[str, Any] = {}
    lock = threading.Lock()

    def enforced() -> FlowStep:
        settings = ctx.settings
        return FlowStep.for_state(settings.direction, settings.mailflow, ctx.rollout.state(),
                                  trust_received=settings.smtp.mode == "after_queue")

    def pipeline() -> Any:
        state = ctx.rollout.state()
        with lock:  # one pipeline per rollout state, built on first use
            if scanner.get("version") != state.version:
                scanner["pipeline"] = build_pipeline(ctx.settings,
                                                     ScanOptions(offline=True, rollout=state))
                scanner["version"] = state.version
            return scanner["pipeline"]

    def view(request: Request, who: Any, *, status: int = 200, **extra: Any) -> Response:
        step = enforced()
        since = time.time() - 7 * 86400
        rows = list_rules(step.rules.settings)
        for row in rows:
            row["hits"] = ctx.store.trace.count(TraceQuery(finding=f"MAILFLOW:{row['name']}",
                                                           since=since))[1]
        versions = [d for d in ctx.rollout.status()["deployments"]
                    if d["artifact"] == FLOW_ARTIFACT]
        latest = step.rules.settings  # the editor starts from the newest staged version
        for dep in ctx.store.rollout.deployments(FLOW_KIND, FLOW_NAME)[::-1]:
            if dep.path and dep.state.value != "retired":
                with contextlib.suppress(ConfigError):
                    latest = load_version(dep.path)
                break
        values = {"text": rules_text(latest), "mail_from": "", "rcpt": "",
                  "client_ip": "", "message": "", **extra.pop("values", {})}
        return ctx.render(request, "mailflow.html", who, http_status=status, rows=rows,
                          enforced=step.enforced.version, config_version=CONFIG_VERSION,
                          versions=versions, values=values,
                          can_edit=who.can("rollout.write"), **extra)

    @router.get("/mailflow")
    @page(ctx)
    def mailflow_page(request: Request) -> Response:
        who = ctx.require(request)
        require(who.principal, "rollout.read")
        return view(request, who)

    @router.post("/mailflow/stage")
    @page(ctx)
    async def mailflow_stage(request: Request) -> Response:
        who, form = await ctx.posted(request)
        require(who.principal, "rollout.write")
        text = str(form.get("rules", ""))
        note = str(form.get("note", "")).strip()[:500]
        try:
            rules = parse_rules(text, "rules")
            dep = ctx.rollout.registry.flow.stage(who.principal, rules, source="console",
                                                  note=note)
        except (ConfigError, InputError) as exc:
            # nothing staged: the text comes back with the errors, line by line
            return view(request, who, status=422, edit_errors=str(exc).split("; "),
                        values={"text": text})
        return ctx.redirect("/mailflow", f"staged {dep.artifact}@{dep.version} in shadow: "
                            "run the gate and promote it on the Rollouts page")

    @router.post("/mailflow/test")
    @page(ctx)
    async def mailflow_test(request: Request) -> Response:
        who, form = await ctx.posted(request)
        require(who.principal, "rollout.read")
        values = {k: str(form.get(k, "") or "").strip()
                  for k in ("mail_from", "rcpt", "client_ip", "message")}
        values["text"] = str(form.get("rules", ""))
        upload = form.get("eml")
        raw = b""
        if upload is not None and not isinstance(upload, str):
            try:
                raw = await upload.read(_MAX_UPLOAD + 1)
            finally:
                await upload.close()
        rcpts = tuple(r for r in values["rcpt"].replace(",", " ").split() if r)
        mail_from = values["mail_from"] or None
        try:
            if not raw and values["message"]:
                raw = ctx.store.trace.raw(values["message"])  # NotFound when not kept
                record = ctx.store.trace.get(values["message"])
                if record is not None:
                    rcpts = rcpts or tuple(record.rcpt_to)
                    mail_from = mail_from or record.mail_from
                    values["client_ip"] = values["client_ip"] or (record.client_ip or "")
            if not raw:
                raise InputError("give a stored message's reference or upload an .eml file")
            if len(raw) > _MAX_UPLOAD:
                raise InputError(f"the message is larger than {_MAX_UPLOAD} bytes")
            current = enforced()
            settings = current.rules.settings
            step = current
            if values["text"].strip() and values["text"] != rules_text(settings):
                settings = parse_rules(values["text"], "rules")
                step = FlowStep(ctx.settings.direction, settings,
                                trust_received=current.direction.trust_received)
        except (ConfigError, InputError) as exc:
            return view(request, who, status=422, test_errors=str(exc).split("; "),
                        values=values)
        env = Envelope(mail_from=mail_from, rcpt_to=rcpts,
                       connection=Connection(client_ip=values["client_ip"] or None))
        flow_ctx = step.before(raw, env)
        result = pipeline().scan(flow_ctx.raw, env)
        result, out = step.after(flow_ctx, result, flow_ctx.raw)
        report = flow_report(settings, flow_ctx, result, raw, out)
        return view(request, who, report=report, values=values)
