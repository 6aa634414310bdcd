"""The rules detector: evaluates the rule packs (built-in default pack plus configured ones).

Codes are the rule ids, which are data; each finding names its pack as the artifact
(``rules:<pack>``) with the pack's content hash as version, and carries the rule's rollout state
so shadow rules are recorded without acting.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from mailsift.config.schema import RuleSettings, Settings
from mailsift.core.context import ScanContext
from mailsift.core.errors import MailsiftError
from mailsift.core.findings import ArtifactState, Finding, Stage
from mailsift.core.rollout import Deployment, RolloutState
from mailsift.detectors.base import Services
from mailsift.detectors.spec import DetectorSpec
from mailsift.rules import BUILTIN_PACK, PackSpec, RuleMeta, RuleSet, load_pack

__all__ = ["RulesDetector", "build"]

log = logging.getLogger("mailsift.rules")


class RulesDetector:
    """Runs the active rule set and any staged (shadow/canary) pack versions on each message."""

    name = "rules"
    stage = Stage.CONTENT

    def __init__(self, ruleset: RuleSet, candidates: Sequence[tuple[str, RuleSet]] = ()) -> None:
        self.ruleset = ruleset
        self.candidates = tuple(candidates)
        codes = set(ruleset.codes)
        for _, cand in self.candidates:
            codes |= cand.codes
        self.codes: frozenset[str] = frozenset(codes)

    def run(self, ctx: ScanContext) -> Sequence[Finding]:
        found = self.ruleset.findings(ctx.message, detector=self.name)
        for _, cand in self.candidates:
            found.extend(cand.findings(ctx.message, detector=self.name))
        return found

    def versions(self) -> Mapping[str, str]:
        out = dict(self.ruleset.versions())
        for label, cand in self.candidates:
            for artifact, version in cand.versions().items():
                out[f"{artifact}#{label}"] = version
        return out

    def describe(self, code: str) -> RuleMeta | None:
        """Metadata of rule ``code`` (description, category, weight, state, versions)."""
        return self.ruleset.rules.get(code)


def _packs(settings: Settings, rollout: RolloutState) -> tuple[list[PackSpec], list[Deployment]]:
    """The active packs (configured ones, replaced by the registry's active version where it
    has one) and the candidate deployments (shadow/canary versions) to run beside them."""
    rules = settings.rules
    configured = [load_pack(BUILTIN_PACK)] if rules.builtin else []
    configured.extend(load_pack(path) for path in rules.paths)
    active: list[PackSpec] = []
    candidates: list[Deployment] = []
    for pack in configured:
        deps = rollout.of("rules", pack.name)
        chosen = next((d for d in deps if d.state is ArtifactState.ACTIVE), None)
        if chosen is not None and chosen.version != pack.version and chosen.path:
            active.append(load_pack(chosen.path))
        elif not any(d.version == pack.version and d.state is ArtifactState.RETIRED
                     for d in deps) or chosen is not None:
            active.append(pack)
        candidates.extend(d for d in deps if d.state in (ArtifactState.SHADOW,
                                                         ArtifactState.CANARY))
    known = {p.name for p in configured}
    for dep in rollout.deployments:
        if dep.kind != "rules" or dep.name in known or not dep.path:
            continue
        if dep.state is ArtifactState.ACTIVE:
            active.append(load_pack(dep.path))
        elif dep.state in (ArtifactState.SHADOW, ArtifactState.CANARY):
            candidates.append(dep)
    return active, candidates


def build(settings: Settings, services: Services) -> RulesDetector:
    """Load the built-in pack (unless ``rules.builtin`` is off), ``rules.paths`` and what the
    rollout registry deployed (``services.rollout``)."""
    rules = settings.rules
    rollout = services.rollout or RolloutState()
    active, candidates = _packs(settings, rollout)
    common = {"max_raw_bytes": rules.max_raw_bytes, "max_body_chars": rules.max_body_chars}
    ruleset = RuleSet(active, disabled=rules.disabled, weights=rules.weights,
                      states=rollout.rule_states, **common)  # type: ignore[arg-type]
    staged = []
    for dep in candidates:
        try:
            pack = load_pack(dep.path)
        except (MailsiftError, OSError) as exc:
            # A staged version never acts, so it must never stop the versions that do: one this
            # code cannot load (staged by a newer release on a node not yet upgraded, or its copy
            # gone) is left out of this node's scans and said loudly.
            log.error("staged %s@%s not run: %s", dep.artifact, dep.version, exc)
            continue
        staged.append((dep.state.value, RuleSet([pack], states=rollout.rule_states,
                                                pack_state=dep.state,
                                                **common)))  # type: ignore[arg-type]
    return RulesDetector(ruleset, staged)


SPEC = DetectorSpec(
    name="rules", stage=Stage.CONTENT, order=10, settings=RuleSettings, factory=build,
    dynamic_codes="the ids of the rules in the loaded rule packs (docs/rules.md); a rule id may "
                  "not start with another detector's prefix",
    summary="Rule packs: the built-in default pack plus configured ones, with rollout states",
)
