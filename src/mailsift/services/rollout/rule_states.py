"""What a promotion would make act, and the gate for one rule (issue 17).

A pack version is promoted as a whole, but its rules carry their own states: a rule written as
``shadow`` (or demoted in the registry) stays in shadow when its pack becomes active, so the
pack's gate rightly sees no verdict change from it, and promoting the pack must say that those
rules still do not act. Making such a rule act (``rollout rule ID --state canary|active``) is a
promotion of its own: ``rule_trial_state`` is the rollout state in which that one rule acts, and
``Gate.check_rule`` replays the gate's inputs with it before the change is allowed (or forced,
audited).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from mailsift.core.findings import ArtifactState
from mailsift.core.rollout import Deployment, RolloutState
from mailsift.rules import BUILTIN_PACK, load_pack

__all__ = ["ENFORCING", "pack_of_rule", "raises_rule", "rule_trial_state", "shadow_rules"]

ENFORCING = (ArtifactState.CANARY, ArtifactState.ACTIVE)
_RANK = {ArtifactState.RETIRED: 0, ArtifactState.SHADOW: 1, ArtifactState.CANARY: 2,
         ArtifactState.ACTIVE: 3}


def _pack_path(dep: Deployment) -> str:
    return dep.path or str(BUILTIN_PACK)


def shadow_rules(dep: Deployment, states: Mapping[str, ArtifactState]) -> list[str]:
    """Rules of a pack version that stay in shadow once it is promoted (written so, or set so
    in the registry)."""
    if dep.kind != "rules":
        return []
    pack = load_pack(_pack_path(dep))
    return sorted(r.id for r in pack.rules
                  if states.get(r.id, r.state) is ArtifactState.SHADOW)


def pack_of_rule(rule: str, deployments: Iterable[Deployment]) -> Deployment | None:
    """The pack version a rule change would affect: the enforced one that has the rule, else
    the newest staged one."""
    found: list[Deployment] = []
    for dep in deployments:
        if dep.kind != "rules" or dep.state is ArtifactState.RETIRED:
            continue
        path = _pack_path(dep)
        if dep.path and not Path(path).is_file():
            continue
        if any(r.id == rule for r in load_pack(path).rules):
            found.append(dep)
    found.sort(key=lambda d: (_RANK[d.state], d.since))
    return found[-1] if found else None


def rule_trial_state(current: RolloutState, rule: str, target: ArtifactState) -> RolloutState:
    """The rollout state in which ``rule`` is in ``target`` (canary is judged as active: the
    gate asks what the rule does wherever it acts)."""
    acting = ArtifactState.ACTIVE if target in ENFORCING else target
    states = {**current.rule_states, rule: acting}
    return replace(current, rule_states=MappingProxyType(states),
                   version=f"{current.version}+rule:{rule}")


def raises_rule(current: Mapping[str, ArtifactState], rule: str, written: ArtifactState | None,
                target: ArtifactState | None) -> bool:
    """Does the change make the rule act more than it does now?"""
    if target is None:
        target = written or ArtifactState.ACTIVE
    now = current.get(rule, written or ArtifactState.ACTIVE)
    return _RANK[target] > _RANK[now] and target in ENFORCING
