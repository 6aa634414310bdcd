"""``/v1/mailflow``: list the gateway's flow rules and test rules on a message.

``GET /v1/mailflow/rules`` lists the configured rules in evaluation order. ``POST
/v1/mailflow/test`` scans a message as the gateway would (same cleaning, lists and rollout
state; nothing recorded or delivered) and applies either the configured rules or the rule file
given in the body (refused with line numbers, 422, when it has an error). Both need a token
whose role may read rollout state (admin, analyst).

``POST /v1/mailflow/stage`` registers a rule set as a new version in shadow (the body's rule
file, or the configuration's rules when it has none; admin) and ``GET /v1/mailflow/versions``
lists the registry's versions with state, gate and shadow diff. ``GET /v1/mailflow/alerts``
lists compromised-account alerts with their evidence. Gate, promotion, withdrawal and
rollback are the rollout endpoints on ``mailflow:rules`` (``/v1/rollout/mailflow:rules/check``
and so on), the same as for a rule pack.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from mailsift.core.envelope import Connection, Envelope
from mailsift.core.errors import ConfigError
from mailsift.interfaces.http.deps import Caller
from mailsift.mailflow.loader import parse_rules
from mailsift.mailflow.step import FlowStep
from mailsift.mailflow.versions import FLOW_ARTIFACT
from mailsift.services.access import require
from mailsift.services.compromise import ALERT_KIND
from mailsift.services.gateway import Gateway, message_ref
from mailsift.services.mailflow import flow_report, list_rules

__all__ = ["build_mailflow_router"]


class TestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(description="the raw message (RFC 5322 text)")
    rules: str | None = Field(None, description="a rule file ([[mailflow.rules]] TOML); "
                              "empty: the configured rules")
    mail_from: str | None = None
    rcpt: list[str] = Field(default_factory=list)
    client_ip: str | None = None


class StageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: str | None = Field(None, description="a rule file ([[mailflow.rules]] TOML); "
                              "empty: the configuration's rules")
    note: str = ""


def _rollout(request: Request) -> Any:
    service = getattr(request.app.state, "rollout", None)
    if service is None:
        raise HTTPException(404, "rollout is not available on this server")
    return service


def build_mailflow_router(gateway: Gateway, *, max_bytes: int) -> APIRouter:
    router = APIRouter(tags=["mailflow"])

    def configured() -> FlowStep:
        if gateway.flow is None:
            raise HTTPException(404, "mail-flow rules are not enabled on this gateway")
        return gateway.flow

    @router.get("/v1/mailflow/rules", summary="The flow rules in evaluation order")
    def rules(caller: Caller) -> list[dict[str, Any]]:
        require(caller, "rollout.read")
        return list_rules(configured().rules.settings)

    @router.get("/v1/mailflow/versions", summary="Flow-rule versions in the rollout registry")
    def versions(caller: Caller, request: Request) -> dict[str, Any]:
        require(caller, "rollout.read")
        step = configured()
        deps = [d for d in _rollout(request).status()["deployments"]
                if d["artifact"] == FLOW_ARTIFACT]
        return {"enforced": step.enforced.version, "versions": deps}

    @router.get("/v1/mailflow/alerts", summary="Compromised-account alerts, newest first")
    def alerts(caller: Caller, request: Request, limit: int = 50) -> list[dict[str, Any]]:
        require(caller, "rollout.read")
        store = _rollout(request).store
        return [a.to_dict() for a in store.rollout.alerts(500)
                if a.kind == ALERT_KIND][:max(1, min(limit, 500))]

    @router.post("/v1/mailflow/stage", summary="Stage flow rules as a new version (shadow)")
    def stage(caller: Caller, request: Request, body: StageBody) -> dict[str, Any]:
        require(caller, "rollout.write")
        flow = _rollout(request).registry.flow
        try:
            if body.rules:
                dep = flow.stage_text(caller, body.rules, note=body.note)
            else:
                dep = flow.stage(caller, flow.registry.settings.mailflow,
                                 source="configuration [mailflow]", note=body.note)
        except ConfigError as exc:
            raise HTTPException(422, str(exc)) from exc
        return {"artifact": dep.artifact, "version": dep.version, "state": dep.state.value}

    @router.post("/v1/mailflow/test", summary="What the flow rules do to one message")
    async def test(caller: Caller, body: TestBody) -> dict[str, Any]:
        require(caller, "rollout.read")
        raw = body.message.encode("utf-8", "surrogateescape")
        if len(raw) > max_bytes:
            raise HTTPException(413, f"message larger than {max_bytes} bytes")
        current = configured()
        settings = current.rules.settings
        step = current
        if body.rules:
            try:
                settings = parse_rules(body.rules, "rules")
            except ConfigError as exc:
                raise HTTPException(422, str(exc)) from exc
            step = FlowStep(current.direction.settings, settings,
                            trust_received=current.direction.trust_received)
        env = Envelope(mail_from=body.mail_from, rcpt_to=tuple(body.rcpt),
                       connection=Connection(client_ip=body.client_ip))
        clean = gateway.clean_incoming(raw)
        ctx = step.before(clean, env)
        result = await gateway.scan(ctx.raw, env, message_ref(raw, env))
        result, out = step.after(ctx, result, ctx.raw)
        return flow_report(settings, ctx, result, clean, out)

    return router
