"""``/v1/rollout`` and ``/v1/incidents``: the rollout commands over HTTP (same service as the
CLI and the UI). The app must carry a ``RolloutService`` in ``app.state.rollout``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict

from mailsift.core.rollout import CanaryScope
from mailsift.interfaces.http.deps import Caller
from mailsift.services.access import NotFound, require, require_reason
from mailsift.services.rollout import RolloutService

__all__ = ["router"]

router = APIRouter()


def _service(request: Request) -> RolloutService:
    service: RolloutService | None = getattr(request.app.state, "rollout", None)
    if service is None:
        raise NotFound("rollout is not available on this server")
    return service


Rollout = Annotated[RolloutService, Depends(_service)]


class Promotion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str
    version: str | None = None
    recipients: list[str] = []
    domains: list[str] = []
    percent: float = 0.0
    force: bool = False
    reason: str = ""


class RuleState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: str | None
    reason: str = ""
    force: bool = False


class TakeBack(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | None = None
    reason: str = ""


class IncidentAllow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    value: str
    hours: float = 24.0
    note: str = ""


@router.get("/rollout", tags=["rollout"], summary="Deployed versions, states, shadow diffs")
def status(svc: Rollout, caller: Caller) -> dict[str, Any]:
    require(caller, "rollout.read")
    return svc.status()


@router.post("/rollout/stage", tags=["rollout"], summary="Stage a rule pack (TOML body)")
def stage(svc: Rollout, caller: Caller,
          pack: Annotated[str, Body(media_type="application/toml")], note: str = ""
          ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pack.toml"
        path.write_text(pack)
        dep = svc.stage(caller, str(path), note=note)
    return {"artifact": dep.artifact, "version": dep.version, "state": dep.state.value}


@router.post("/rollout/{name}/check", tags=["rollout"], summary="Run the promotion gate")
def check(svc: Rollout, caller: Caller, name: str, version: str | None = None
          ) -> dict[str, Any]:
    if name.startswith("rule:"):
        return svc.check_rule(caller, name[5:]).to_dict()
    return svc.check(caller, name, version).to_dict()


@router.post("/rollout/{name}/promote", tags=["rollout"], summary="Promote to canary/active")
def promote(svc: Rollout, caller: Caller, name: str, body: Promotion) -> dict[str, Any]:
    scope = CanaryScope(tuple(body.recipients), tuple(body.domains), body.percent) \
        if body.to == "canary" else None
    dep = svc.promote(caller, name, body.version, to=body.to, scope=scope, force=body.force,
                      reason=body.reason)
    return {"artifact": dep.artifact, "version": dep.version, "state": dep.state.value,
            "shadow_rules": svc.shadow_rules(dep)}


@router.post("/rollout/{name}/withdraw", tags=["rollout"],
             summary="Take a canary back to shadow (it stops acting, keeps being recorded)")
def withdraw(svc: Rollout, caller: Caller, name: str, body: TakeBack) -> dict[str, Any]:
    require(caller, "rollout.write")
    dep = svc.withdraw(caller, name, body.version,
                       reason=require_reason(body.reason, "withdrawing a canary"))
    return {"artifact": dep.artifact, "version": dep.version, "state": dep.state.value}


@router.post("/rollout/{name}/retire", tags=["rollout"],
             summary="Stop running a shadow or canary version")
def retire(svc: Rollout, caller: Caller, name: str, body: TakeBack) -> dict[str, Any]:
    require(caller, "rollout.write")
    dep = svc.retire(caller, name, body.version,
                     reason=require_reason(body.reason, "retiring a version"))
    return {"artifact": dep.artifact, "version": dep.version, "state": dep.state.value}


@router.post("/rollout/{name}/rollback", tags=["rollout"], summary="Return to the previous version")
def rollback(svc: Rollout, caller: Caller, name: str, reason: str = "") -> dict[str, Any]:
    require(caller, "rollout.write")
    dep = svc.rollback(caller, name, reason=require_reason(reason, "a rollback"))
    return {"artifact": dep.artifact, "version": dep.version, "state": dep.state.value}


@router.put("/rollout/rules/{rule}", tags=["rollout"], summary="Set one rule's rollout state")
def rule_state(svc: Rollout, caller: Caller, rule: str, body: RuleState) -> dict[str, Any]:
    svc.set_rule(caller, rule, body.state, reason=body.reason, force=body.force)
    return {"rule": rule, "state": body.state}


@router.get("/incidents", tags=["incidents"], summary="Incidents opened by the circuit breaker")
def incidents(svc: Rollout, caller: Caller, state: str | None = None) -> list[dict[str, Any]]:
    require(caller, "rollout.read")
    return [i.to_dict() for i in svc.store.rollout.incidents(state)]


@router.get("/incidents/{incident}", tags=["incidents"])
def incident(svc: Rollout, caller: Caller, incident: str) -> dict[str, Any]:
    require(caller, "rollout.read")
    info = svc.store.rollout.incident(incident)
    if info is None:
        raise NotFound(f"no incident {incident}")
    members = svc.store.rollout.incident_messages(incident)
    return {**info.to_dict(), "members": [{"message": m, "outcome": o} for m, o in members]}


@router.post("/incidents/{incident}/release", tags=["incidents"],
             summary="Re-scan the incident's messages and release the clean ones, once")
async def release(svc: Rollout, caller: Caller, incident: str,
                  reason: str = "") -> dict[str, Any]:
    """``reason`` (a query parameter) is required: it is audited with the release."""
    require(caller, "quarantine.release")
    return await svc.release_incident(caller, incident,
                                      reason=require_reason(reason, "an incident release"))


@router.post("/incidents/{incident}/allow", tags=["incidents"],
             summary="A time-boxed allow that beats high-confidence verdicts (audited)")
def allow(svc: Rollout, caller: Caller, incident: str, body: IncidentAllow) -> dict[str, Any]:
    entry = svc.incident_allow(caller, incident, body.kind, body.value, hours=body.hours,
                               note=body.note)
    return {"id": entry.entry_id, "kind": entry.kind, "value": entry.value,
            "expires_at": entry.expires_at}
