"""The rollout registry in the store: deployed artifact versions and their states, per-rule
states, shadow verdicts, circuit-breaker alerts and incidents.

Every change is audited by the service layer. ``state()`` gives the pipeline its
``RolloutState``; its ``version`` changes whenever anything here changes, so gateway nodes can
poll it cheaply and rebuild their scan workers only when needed.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import (
    Engine,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from mailsift.core.errors import StoreError
from mailsift.core.findings import ArtifactState
from mailsift.core.protocols import Clock
from mailsift.core.rollout import CanaryScope, Deployment, RolloutState
from mailsift.store.base import ADDR, Base, BigId
from mailsift.store.db import read_only

__all__ = ["AlertInfo", "DeploymentRow", "IncidentInfo", "RolloutStore"]


class DeploymentRow(Base):
    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("kind", "name", "version", name="uq_deployment"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(Text, default="")
    scope_json: Mapped[str] = mapped_column(Text, default="null")
    staged_at: Mapped[float] = mapped_column(Float)
    state_since: Mapped[float] = mapped_column(Float)
    promoted_at: Mapped[float | None] = mapped_column(Float)
    staged_by: Mapped[str] = mapped_column(String(ADDR), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    gate_json: Mapped[str] = mapped_column(Text, default="null")


class RuleStateRow(Base):
    __tablename__ = "rule_states"

    rule: Mapped[str] = mapped_column(String(128), primary_key=True)
    pack: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(16))
    since: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(ADDR), default="")
    reason: Mapped[str] = mapped_column(Text, default="")


class ShadowVerdictRow(Base):
    __tablename__ = "shadow_verdicts"
    __table_args__ = (Index("ix_shadow_artifact_at", "artifact", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_pk: Mapped[str] = mapped_column(String(64), index=True)
    artifact: Mapped[str] = mapped_column(String(320))
    at: Mapped[float] = mapped_column(Float)
    actual_category: Mapped[str] = mapped_column(String(32))
    actual_action: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    opened_at: Mapped[float] = mapped_column(Float)
    closed_at: Mapped[float | None] = mapped_column(Float)
    subject: Mapped[str] = mapped_column(String(320))
    artifact: Mapped[str] = mapped_column(String(320), default="")
    version: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    action_taken: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="open")
    released: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[float | None] = mapped_column(Float)
    hold_id: Mapped[str] = mapped_column(String(64), default="")


class IncidentMessageRow(Base):
    __tablename__ = "incident_messages"

    incident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_pk: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    outcome: Mapped[str] = mapped_column(String(256), default="")


class AlertRow(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(320))
    message: Mapped[str] = mapped_column(Text)
    artifact: Mapped[str] = mapped_column(String(320), default="")
    version: Mapped[str] = mapped_column(String(64), default="")
    incident_id: Mapped[str] = mapped_column(String(64), default="")
    rolled_back: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True, slots=True)
class IncidentInfo:
    id: str
    opened_at: float
    subject: str
    artifact: str
    version: str
    reason: str
    action_taken: str
    state: str
    released: int
    messages: int
    first_seen: float | None
    closed_at: float | None
    hold_id: str

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class AlertInfo:
    id: int
    at: float
    kind: str
    subject: str
    message: str
    artifact: str
    version: str
    incident_id: str
    rolled_back: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def _scope(text: str) -> CanaryScope | None:
    data = json.loads(text or "null")
    if not data:
        return None
    # clamped: a row written before percent was validated (500 acted as 100) must not stop
    # every node from reading the registry
    percent = min(100.0, max(0.0, float(data.get("percent", 0)) or 0.0))
    return CanaryScope(tuple(data.get("recipients", ())), tuple(data.get("domains", ())),
                       percent)


def _deployment(r: Any) -> Deployment:
    return Deployment(kind=r.kind, name=r.name, version=r.version,
                      state=ArtifactState(r.state), path=r.path, scope=_scope(r.scope_json),
                      since=r.promoted_at or r.staged_at)


class RolloutStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    # -- registry -------------------------------------------------------------------------------
    def deployments(self, kind: str | None = None, name: str | None = None) -> list[Deployment]:
        stmt = select(DeploymentRow).order_by(DeploymentRow.kind, DeploymentRow.name,
                                              DeploymentRow.staged_at)
        if kind:
            stmt = stmt.where(DeploymentRow.kind == kind)
        if name:
            stmt = stmt.where(DeploymentRow.name == name)
        with read_only(self.engine) as conn:
            return [_deployment(r) for r in conn.execute(stmt)]

    def row(self, kind: str, name: str, version: str) -> dict[str, Any] | None:
        with read_only(self.engine) as conn:
            r = conn.execute(select(DeploymentRow).where(
                DeploymentRow.kind == kind, DeploymentRow.name == name,
                DeploymentRow.version == version)).first()
        return dict(r._mapping) if r is not None else None

    def stage(self, dep: Deployment, *, actor: str, note: str = "") -> Deployment:
        now = self.clock.now()
        if self.row(dep.kind, dep.name, dep.version) is not None:
            raise StoreError(f"{dep.artifact}@{dep.version} is already staged")
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(DeploymentRow).values(
                    kind=dep.kind, name=dep.name, version=dep.version, state=dep.state.value,
                    path=dep.path, scope_json=json.dumps(None), staged_at=now, state_since=now,
                    promoted_at=now if dep.state is ArtifactState.ACTIVE else None,
                    staged_by=actor, note=note))
        except IntegrityError as exc:  # another node staged it between the check and now
            raise StoreError(f"{dep.artifact}@{dep.version} is already staged") from exc
        return dep

    def set_state(self, kind: str, name: str, version: str, state: ArtifactState, *,
                  scope: CanaryScope | None = None, gate: dict[str, Any] | None = None) -> None:
        now = self.clock.now()
        values: dict[str, Any] = {"state": state.value, "state_since": now}
        if state is ArtifactState.ACTIVE:
            values["promoted_at"] = now
        if scope is not None or state is not ArtifactState.CANARY:
            values["scope_json"] = json.dumps(
                {"recipients": list(scope.recipients), "domains": list(scope.domains),
                 "percent": scope.percent} if scope else None)
        if gate is not None:
            values["gate_json"] = json.dumps(gate)
        with self.engine.begin() as conn:
            n = conn.execute(update(DeploymentRow).where(
                DeploymentRow.kind == kind, DeploymentRow.name == name,
                DeploymentRow.version == version).values(**values)).rowcount
        if not n:
            raise StoreError(f"{kind}:{name}@{version} is not staged")

    def set_path(self, kind: str, name: str, version: str, path: str) -> None:
        """Record the local copy of a version registered without one (a built-in baseline of
        a release that kept no copies)."""
        with self.engine.begin() as conn:
            conn.execute(update(DeploymentRow).where(
                DeploymentRow.kind == kind, DeploymentRow.name == name,
                DeploymentRow.version == version).values(path=path))

    def set_rule_state(self, rule: str, state: ArtifactState | None, *, pack: str = "",
                       actor: str, reason: str = "") -> None:
        """Set (or with ``None`` clear) the rollout state of one rule."""
        with self.engine.begin() as conn:
            conn.execute(delete(RuleStateRow).where(RuleStateRow.rule == rule))
            if state is not None:
                conn.execute(insert(RuleStateRow).values(
                    rule=rule, pack=pack, state=state.value, since=self.clock.now(),
                    actor=actor, reason=reason))

    def rule_states(self) -> dict[str, dict[str, Any]]:
        with read_only(self.engine) as conn:
            return {r.rule: dict(r._mapping) for r in conn.execute(select(RuleStateRow))}

    def state(self) -> RolloutState:
        deps = tuple(self.deployments())  # retired ones too: they say what was rolled back
        rules = {k: ArtifactState(v["state"]) for k, v in self.rule_states().items()}
        blob = json.dumps([[d.kind, d.name, d.version, d.state.value, d.path,
                            d.scope.members() if d.scope else None] for d in deps]
                          + [sorted((k, v.value) for k, v in rules.items())], sort_keys=True)
        version = hashlib.sha256(blob.encode()).hexdigest()[:12]
        return RolloutState(deployments=deps, rule_states=MappingProxyType(rules),
                            version=version)

    # -- shadow verdicts ------------------------------------------------------------------------
    def record_shadow(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(ShadowVerdictRow), list(rows))

    def shadow_diff(self, artifact: str, since: float = 0.0) -> dict[str, Any]:
        """How the staged version's verdicts differ from the enforced ones."""
        stmt = (select(ShadowVerdictRow.actual_action, ShadowVerdictRow.action,
                       func.count()).where(ShadowVerdictRow.artifact == artifact,
                                           ShadowVerdictRow.at >= since)
                .group_by(ShadowVerdictRow.actual_action, ShadowVerdictRow.action))
        with read_only(self.engine) as conn:
            rows = conn.execute(stmt).all()
            first = conn.execute(select(func.min(ShadowVerdictRow.at)).where(
                ShadowVerdictRow.artifact == artifact)).scalar()
        pairs = [{"actual": a, "shadow": s, "count": int(n)} for a, s, n in rows]
        changed = sum(int(n) for a, s, n in rows if a != s)
        return {"artifact": artifact, "pairs": pairs, "changed": changed,
                "total": sum(int(n) for _, _, n in rows), "first_seen": first}

    # -- incidents and alerts -------------------------------------------------------------------
    def open_incident(self, subject: str, *, artifact: str = "", version: str = "",
                      reason: str = "", action_taken: str = "", messages: Iterable[str] = (),
                      first_seen: float | None = None, hold_id: str = "") -> str:
        incident = f"inc-{uuid.uuid4().hex[:10]}"
        with self.engine.begin() as conn:
            conn.execute(insert(IncidentRow).values(
                id=incident, opened_at=self.clock.now(), subject=subject, artifact=artifact,
                version=version, reason=reason, action_taken=action_taken, state="open",
                released=0, first_seen=first_seen, hold_id=hold_id))
        self.add_incident_messages(incident, messages)
        return incident

    def add_incident_messages(self, incident: str, messages: Iterable[str]) -> int:
        with self.engine.begin() as conn:
            known = set(conn.execute(select(IncidentMessageRow.message_pk).where(
                IncidentMessageRow.incident_id == incident)).scalars())
            new = [{"incident_id": incident, "message_pk": m, "outcome": ""}
                   for m in dict.fromkeys(messages) if m not in known]
            if new:
                conn.execute(insert(IncidentMessageRow), new)
        return len(new)

    def incident_messages(self, incident: str) -> list[tuple[str, str]]:
        with read_only(self.engine) as conn:
            return [(r.message_pk, r.outcome) for r in conn.execute(
                select(IncidentMessageRow).where(IncidentMessageRow.incident_id == incident)
                .order_by(IncidentMessageRow.message_pk))]

    def set_incident_outcome(self, incident: str, outcomes: dict[str, str]) -> None:
        with self.engine.begin() as conn:
            for message, outcome in outcomes.items():
                conn.execute(update(IncidentMessageRow).where(
                    IncidentMessageRow.incident_id == incident,
                    IncidentMessageRow.message_pk == message).values(outcome=outcome))

    def update_incident(self, incident: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(IncidentRow).where(IncidentRow.id == incident).values(**values))

    def incidents(self, state: str | None = None) -> list[IncidentInfo]:
        count = (select(func.count()).where(IncidentMessageRow.incident_id == IncidentRow.id)
                 .scalar_subquery())
        stmt = select(IncidentRow, count.label("n")).order_by(IncidentRow.opened_at.desc())
        if state:
            stmt = stmt.where(IncidentRow.state == state)
        with read_only(self.engine) as conn:
            return [self._incident(r) for r in conn.execute(stmt)]

    def incident(self, incident: str) -> IncidentInfo | None:
        found = [i for i in self.incidents() if i.id == incident]
        return found[0] if found else None

    @staticmethod
    def _incident(r: Any) -> IncidentInfo:
        return IncidentInfo(id=r.id, opened_at=r.opened_at, subject=r.subject,
                            artifact=r.artifact, version=r.version, reason=r.reason,
                            action_taken=r.action_taken, state=r.state, released=r.released,
                            messages=int(r.n), first_seen=r.first_seen, closed_at=r.closed_at,
                            hold_id=r.hold_id)

    def open_incident_for(self, subject: str) -> IncidentInfo | None:
        return next((i for i in self.incidents("open") if i.subject == subject), None)

    def alert(self, kind: str, subject: str, message: str, *, artifact: str = "",
              version: str = "", incident: str = "") -> int:
        with self.engine.begin() as conn:
            res = conn.execute(insert(AlertRow).values(
                at=self.clock.now(), kind=kind, subject=subject, message=message,
                artifact=artifact, version=version, incident_id=incident, rolled_back=0))
            return int(res.inserted_primary_key[0])  # type: ignore[index]

    def mark_alerts_rolled_back(self, artifact: str, version: str) -> int:
        with self.engine.begin() as conn:
            return conn.execute(update(AlertRow).where(
                AlertRow.artifact == artifact, AlertRow.version == version)
                .values(rolled_back=1)).rowcount

    def alerts(self, limit: int = 100) -> list[AlertInfo]:
        with read_only(self.engine) as conn:
            return [AlertInfo(id=r.id, at=r.at, kind=r.kind, subject=r.subject,
                              message=r.message, artifact=r.artifact, version=r.version,
                              incident_id=r.incident_id, rolled_back=bool(r.rolled_back))
                    for r in conn.execute(select(AlertRow).order_by(AlertRow.id.desc())
                                          .limit(limit))]
