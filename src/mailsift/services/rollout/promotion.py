"""State changes of staged versions and rules: promote (gated, or forced and audited), roll
back to the previous version that acted, withdraw a canary, retire a shadow or canary version,
and promote or demote one rule inside its pack (gated on its own effect). Every change is
audited; a forced one also raises an alert.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from mailsift.core.errors import InputError, Overridable
from mailsift.core.findings import ArtifactState
from mailsift.core.rollout import CanaryScope, Deployment
from mailsift.rollout.gate import shadow_problem
from mailsift.rules import BUILTIN_PACK, load_pack
from mailsift.services.access import Principal, require
from mailsift.services.rollout.gate import Gate
from mailsift.services.rollout.registry import Registry
from mailsift.services.rollout.rule_states import pack_of_rule, raises_rule

__all__ = ["Promotion"]


class Promotion:
    def __init__(self, registry: Registry, gate: Gate) -> None:
        self.registry = registry
        self.gate = gate

    def promote(self, actor: Principal, name: str, version: str | None = None, *,
                to: str = "active", scope: CanaryScope | None = None, force: bool = False,
                reason: str = "") -> Deployment:
        require(actor, "rollout.write")
        registry, store = self.registry, self.registry.store
        try:
            target = ArtifactState(to)
        except ValueError:
            raise InputError(f"unknown state {to!r}") from None
        dep = registry.find(name, version)
        row = store.rollout.row(dep.kind, dep.name, dep.version) or {}
        gate = json.loads(row.get("gate_json") or "null")
        problems = []
        if target not in (ArtifactState.CANARY, ArtifactState.ACTIVE):
            raise InputError(f"promote to canary or active, not {to!r} (withdraw or retire "
                             "take a version out of shadow or canary)")
        if target is ArtifactState.CANARY and (scope is None or scope.empty):
            raise InputError("a canary needs a scope (recipients, domains or percent)")
        if target in (ArtifactState.CANARY, ArtifactState.ACTIVE):
            if gate is None:
                problems.append("the gate has not run (mailsift rollout check)")
            elif not gate.get("passed"):
                problems.append("the gate refused it: " + "; ".join(gate.get("reasons", [])))
            # the shadow diff keeps growing after the gate ran: judge it as it is now
            rollout = registry.settings.rollout
            shadow = shadow_problem(registry.shadow_diff(dep), rollout.traffic_budget)
            if shadow is not None and shadow not in (gate or {}).get("reasons", []):
                problems.append(shadow)
            shadow_hours = (registry.clock() - dep.since) / 3600
            if dep.state is ArtifactState.SHADOW and shadow_hours < rollout.min_shadow_hours:
                problems.append(f"in shadow for {shadow_hours:.1f} h, minimum "
                                f"{rollout.min_shadow_hours:g} h")
        if problems and not force:
            raise Overridable("promotion refused: " + "; ".join(problems), needs_reason=False)
        if target is ArtifactState.ACTIVE:
            slot = store.rollout.deployments(dep.kind, None if dep.kind == "model" else dep.name)
            for other in slot:
                if other.version != dep.version and other.state is ArtifactState.ACTIVE:
                    store.rollout.set_state(other.kind, other.name, other.version,
                                            ArtifactState.RETIRED)
        store.rollout.set_state(dep.kind, dep.name, dep.version, target, scope=scope)
        store.audit.append(actor.name, "rollout.force" if problems else "rollout.promote",
                           f"{dep.artifact}@{dep.version}",
                           {"to": target.value, "overridden": problems, "reason": reason,
                            "scope": scope.members() if scope else None})
        if problems:
            registry.alerts.raise_alert("forced_promotion", f"{dep.artifact}@{dep.version}",
                                        f"{actor.name} forced promotion to {target.value}: "
                                        + "; ".join(problems), artifact=dep.artifact,
                                        version=dep.version)
        return replace(dep, state=target, scope=scope)

    def rollback_plan(self, name: str) -> tuple[Deployment, Deployment]:
        """(the active version, the one a rollback returns to), or ``InputError`` saying why
        there is none. Read-only: the console shows a rollback button only where this holds."""
        store = self.registry.store
        kind, bare = self.registry.split(name)
        deps = store.rollout.deployments(kind, bare)
        if len({d.kind for d in deps}) > 1:
            raise InputError(f"both rules:{bare} and model:{bare} exist: name one of them")
        if kind == "model" or any(d.kind == "model" for d in deps):
            deps = store.rollout.deployments("model")  # one model slot, any name
        current = next((d for d in reversed(deps) if d.state is ArtifactState.ACTIVE), None)
        if current is None:
            raise InputError(f"{name} has no active version to roll back")
        # only a version that once acted is a rollback target: one retired from shadow or
        # canary (``retire``) never enforced anything
        previous = [d for d in deps if d.state is ArtifactState.RETIRED
                    and d.kind == current.kind and d.version != current.version
                    and (store.rollout.row(d.kind, d.name, d.version) or {})
                    .get("promoted_at") is not None]
        if not previous:
            raise InputError(f"{current.artifact} has no earlier version to return to")
        back = previous[-1]
        if back.path and not Path(back.path).is_file():
            raise InputError(f"the local copy of {back.version} is missing: {back.path}")
        return current, back

    def rollback(self, actor: Principal, name: str, *, reason: str = "") -> Deployment:
        """Retire the active version and re-activate the previous one (from local copies)."""
        require(actor, "rollout.write")
        store = self.registry.store
        current, back = self.rollback_plan(name)
        store.rollout.set_state(current.kind, current.name, current.version,
                                ArtifactState.RETIRED)
        store.rollout.set_state(back.kind, back.name, back.version, ArtifactState.ACTIVE)
        store.rollout.mark_alerts_rolled_back(current.artifact, current.version)
        store.audit.append(actor.name, "rollout.rollback", current.artifact,
                           {"from": current.version, "to": back.version, "reason": reason})
        return replace(back, state=ArtifactState.ACTIVE)

    def set_rule(self, actor: Principal, rule: str, state: str | None, *,
                 reason: str = "", force: bool = False) -> None:
        """Promote or demote one rule inside its pack (``None`` clears the override). A change
        that makes the rule act more (to canary or active, or clearing a shadow override of a
        rule written active) passes the rule's own gate first, or is forced (audited)."""
        require(actor, "rollout.write")
        registry, store = self.registry, self.registry.store
        target = registry.rule_target(rule, state)
        current = registry.state()
        pack = pack_of_rule(rule, current.deployments)
        written = next((r.state for r in load_pack(pack.path or str(BUILTIN_PACK)).rules
                        if r.id == rule), None) if pack is not None else None
        problems: list[str] = []
        if raises_rule(current.rule_states, rule, written, target):
            report = self.gate.check_rule(actor, rule, (target or written or ArtifactState.ACTIVE)
                                          .value)
            problems = report.reasons
        if problems and not force:
            raise Overridable(f"rule {rule} refused: " + "; ".join(problems),
                              needs_reason=False)
        store.rollout.set_rule_state(rule, target, actor=actor.name, reason=reason)
        store.audit.append(actor.name, "rollout.force" if problems else "rollout.rule",
                           f"rule:{rule}" if problems else rule,
                           {"state": state, "reason": reason, "overridden": problems})
        if problems:
            registry.alerts.raise_alert("forced_promotion", f"rule:{rule}",
                                        f"{actor.name} forced rule {rule} to "
                                        f"{state or 'written'}: " + "; ".join(problems))

    def withdraw(self, actor: Principal, name: str, version: str | None = None, *,
                 reason: str = "") -> Deployment:
        """A canary goes back to shadow: it stops acting anywhere and keeps being recorded."""
        return self._take_back(actor, name, version, ArtifactState.SHADOW, reason,
                               allowed=(ArtifactState.CANARY,))

    def retire(self, actor: Principal, name: str, version: str | None = None, *,
               reason: str = "") -> Deployment:
        """A shadow or canary version stops running (its local copy stays). The active version
        is left alone: ``rollback`` returns it to its predecessor."""
        return self._take_back(actor, name, version, ArtifactState.RETIRED, reason,
                               allowed=(ArtifactState.SHADOW, ArtifactState.CANARY))

    def _take_back(self, actor: Principal, name: str, version: str | None,
                   target: ArtifactState, reason: str,
                   allowed: tuple[ArtifactState, ...]) -> Deployment:
        require(actor, "rollout.write")
        store = self.registry.store
        dep = self.registry.find(name, version)
        if dep.state not in allowed:
            raise InputError(f"{dep.artifact}@{dep.version} is {dep.state.value}; only "
                             f"{' or '.join(s.value for s in allowed)} versions can be "
                             f"{'withdrawn' if target is ArtifactState.SHADOW else 'retired'}"
                             + (" (use rollback for the active one)"
                                if dep.state is ArtifactState.ACTIVE else ""))
        store.rollout.set_state(dep.kind, dep.name, dep.version, target)
        if dep.state is ArtifactState.CANARY:
            store.rollout.mark_alerts_rolled_back(dep.artifact, dep.version)
        verb = "withdraw" if target is ArtifactState.SHADOW else "retire"
        store.audit.append(actor.name, f"rollout.{verb}", f"{dep.artifact}@{dep.version}",
                           {"from": dep.state.value, "to": target.value, "reason": reason})
        return replace(dep, state=target, scope=None)
