"""Flow-rule sets in the rollout registry: staging a version, and what the gate replays.

The configuration's ``[[mailflow.rules]]`` (or a rule file of the same shape) stay the way rules
are declared; ``stage`` turns a declared set into a version (``mailflow:rules@HASH``) in shadow,
copied locally as JSON. From there a version goes the way of a rule pack: ``rollout check``
(the gate), ``promote`` to canary or active, ``withdraw``, ``retire``, ``rollback``, each
audited. The first staging also registers the configuration's rules as the active baseline, so
a rollback always has a target.

The gate replays the same inputs as a pack's gate (known-good corpora, the robustness set,
confirmed not-junk reports, recent stored traffic) through the scan pipeline once and then
through the enforced flow rules and the candidate's: a candidate that would quarantine or reject
known-good mail the enforced rules deliver is refused, each message listed with the rules that
did it.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from mailsift.config.mailflow import MailflowSettings
from mailsift.core.envelope import Envelope
from mailsift.core.errors import InputError
from mailsift.core.findings import ArtifactState
from mailsift.core.result import ScanResult
from mailsift.core.rollout import Deployment, RolloutState
from mailsift.mailflow.engine import RuleSet
from mailsift.mailflow.loader import load_rules, parse_rules
from mailsift.mailflow.step import FlowStep
from mailsift.mailflow.versions import (
    FLOW_KIND,
    FLOW_NAME,
    FlowSet,
    dump_rules,
    flow_version,
    load_version,
)
from mailsift.pipeline import Pipeline
from mailsift.services.access import Principal, require

if TYPE_CHECKING:
    from mailsift.services.rollout.registry import Registry

__all__ = ["FlowScan", "FlowVersions", "is_flow_file"]


def is_flow_file(path: Path) -> bool:
    """A TOML file whose top table is ``[mailflow]`` (a flow-rule file, not a rule pack)."""
    if path.suffix != ".toml" or not path.is_file():
        return False
    try:
        return "mailflow" in tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


class _Scanned:
    """The pipeline's result for the message last scanned: the enforced and the candidate flow
    rules read the same scan (the message is scanned once per gate input, not twice)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.key: tuple[str, bytes] | None = None
        self.result: ScanResult | None = None

    def scan(self, raw: bytes, envelope: Envelope, message_id: str) -> ScanResult:
        if self.key != (message_id, raw) or self.result is None:
            self.result = self.pipeline.scan(raw, envelope, message_id=message_id)
            self.key = (message_id, raw)
        return self.result


class FlowScan:
    """A scan pipeline followed by a flow step: what the gateway decides, as the gate needs it
    (``scan(raw, envelope, message_id=...)``)."""

    def __init__(self, scanned: _Scanned, step: FlowStep) -> None:
        self.scanned = scanned
        self.step = step

    def scan(self, raw: bytes, envelope: Envelope | None = None, *,
             message_id: str = "") -> ScanResult:
        envelope = envelope or Envelope()
        ctx = self.step.before(raw, envelope)
        result = self.scanned.scan(ctx.raw, envelope, message_id)
        return self.step.after(ctx, result, ctx.raw)[0]


class FlowVersions:
    """Staging flow-rule versions and the gate's pair of flow scans (used by ``Registry`` and
    ``Gate``)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @property
    def folder(self) -> Path:
        return self.registry.artifacts / FLOW_KIND / FLOW_NAME

    def _copy(self, rules: MailflowSettings) -> tuple[str, str]:
        version = flow_version(rules)
        target = self.folder / f"{version}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dump_rules(rules), encoding="utf-8")
        return version, str(target)

    def stage(self, actor: Principal, rules: MailflowSettings, *, source: str,
              note: str = "") -> Deployment:
        """Register ``rules`` as a new version in shadow (validated, copied locally)."""
        require(actor, "rollout.write")
        if not rules.rules:
            raise InputError(f"{source} declares no flow rule: nothing to stage")
        store = self.registry.store
        version = flow_version(rules)
        if store.rollout.row(FLOW_KIND, FLOW_NAME, version) is not None:
            raise InputError(f"these flow rules are already staged as mailflow:rules@{version}"
                             " (see mailsift rollout status)")
        configured = self.registry.settings.mailflow
        if configured.rules and not store.rollout.deployments(FLOW_KIND, FLOW_NAME) \
                and flow_version(configured) != version:
            # what enforces today becomes the baseline, so rollback has a target
            base, path = self._copy(configured)
            store.rollout.stage(Deployment(FLOW_KIND, FLOW_NAME, base, ArtifactState.ACTIVE,
                                           path), actor=actor.name,
                                note="configured flow rules (baseline)")
        version, path = self._copy(rules)
        dep = Deployment(FLOW_KIND, FLOW_NAME, version, ArtifactState.SHADOW, path)
        store.rollout.stage(dep, actor=actor.name, note=note)
        store.audit.append(actor.name, "rollout.stage", f"{dep.artifact}@{dep.version}",
                           {"source": source, "note": note,
                            "rules": [r.name for r in rules.rules]})
        return dep

    def stage_path(self, actor: Principal, path: str | Path, *, note: str = "") -> Deployment:
        return self.stage(actor, load_rules(path), source=str(path), note=note)

    def stage_text(self, actor: Principal, text: str, *, source: str = "rules",
                   note: str = "") -> Deployment:
        return self.stage(actor, parse_rules(text, source), source=source, note=note)

    def gate_scans(self, pipeline: Pipeline, current: RolloutState,
                   candidate: Deployment) -> tuple[FlowScan, FlowScan]:
        """The enforced flow rules and the candidate's, each after the same scan."""
        settings = self.registry.settings
        trust = settings.smtp.mode == "after_queue"
        scanned = _Scanned(pipeline)
        enforced = FlowStep.for_state(settings.direction, settings.mailflow,
                                      _without_trials(current), trust_received=trust)
        rules = load_version(candidate.path)
        trial = FlowStep(settings.direction, rules, trust_received=trust,
                         sets=(FlowSet(RuleSet(rules), candidate.version), ()))
        return FlowScan(scanned, enforced), FlowScan(scanned, trial)


def _without_trials(state: RolloutState) -> RolloutState:
    """The state with only the enforced flow version (no canary or shadow beside it)."""
    keep = tuple(d for d in state.deployments
                 if d.kind != FLOW_KIND or d.state is ArtifactState.ACTIVE)
    return replace(state, deployments=keep)
