"""Flow-rule sets as versioned artifacts of the rollout registry (``mailflow:rules``).

A version is a whole validated rule set (``[[mailflow.rules]]`` and ``[mailflow.groups]``),
named by the hash of its content and kept as a JSON copy under the registry's artifacts folder,
so a rollback never needs the configuration file that changed. ``flow_sets`` turns the registry's
state into what the flow step runs: the rule set that enforces (the active registry version, or
the configuration's rules while the registry holds none), a canary version with its scope, and
shadow versions whose verdicts are only recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from mailsift.config.mailflow import MailflowSettings
from mailsift.core.errors import ConfigError
from mailsift.core.findings import ArtifactState
from mailsift.core.rollout import RolloutState
from mailsift.mailflow.engine import RuleSet

__all__ = ["CONFIG_VERSION", "FLOW_ARTIFACT", "FLOW_KIND", "FLOW_NAME", "FlowSet", "dump_rules",
           "flow_sets", "flow_version", "load_version"]

log = logging.getLogger("mailsift.mailflow")

FLOW_KIND = "mailflow"
FLOW_NAME = "rules"
FLOW_ARTIFACT = f"{FLOW_KIND}:{FLOW_NAME}"
CONFIG_VERSION = "config"  # the configuration's rules, while the registry holds no version


def dump_rules(rules: MailflowSettings) -> str:
    """The canonical JSON form of a rule set (what a version's local copy holds)."""
    return json.dumps(rules.model_dump(mode="json", by_alias=True), sort_keys=True, indent=1)


def flow_version(rules: MailflowSettings) -> str:
    """A rule set's version: the hash of its canonical form (the same rules, the same
    version, wherever they were declared)."""
    return hashlib.sha256(dump_rules(rules).encode()).hexdigest()[:12]


def load_version(path: str | Path) -> MailflowSettings:
    """A version's rules from its local copy, validated again (``ConfigError`` names it)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return MailflowSettings.model_validate(data)
    except (OSError, ValueError, ValidationError) as exc:
        raise ConfigError(f"{path}: cannot load the flow-rule version: {exc}") from exc


@dataclass(frozen=True)
class FlowSet:
    """One rule set the step runs: its version, its state and (canary) its scope members."""

    rules: RuleSet
    version: str = CONFIG_VERSION
    state: ArtifactState = ArtifactState.ACTIVE
    scope: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{FLOW_ARTIFACT}@{self.version}"


def flow_sets(config: MailflowSettings, state: RolloutState | None
              ) -> tuple[FlowSet, tuple[FlowSet, ...]]:
    """The enforced set and the trial sets (canary, shadow) of a rollout state. The active
    registry version enforces; without one the configuration's rules do. A staged version whose
    copy cannot be loaded is left out (said loudly): it never acts, so it must never stop the
    set that does."""
    enforced = FlowSet(RuleSet(config))
    trials: list[FlowSet] = []
    for dep in state.of(FLOW_KIND, FLOW_NAME) if state is not None else ():
        if dep.state is ArtifactState.RETIRED or not dep.path:
            continue
        try:
            rules = load_version(dep.path)
        except ConfigError as exc:
            log.error("flow-rule version %s not run: %s", dep.version, exc)
            continue
        scope = dep.scope.members() if dep.scope is not None else ()
        one = FlowSet(RuleSet(rules), dep.version, dep.state, scope)
        if dep.state is ArtifactState.ACTIVE:
            enforced = one
        else:
            trials.append(one)
    return enforced, tuple(trials)
