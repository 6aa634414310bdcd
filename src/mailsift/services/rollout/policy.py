"""Policy changes through the gate: ``check_config`` and ``accept_config``, and the start-time
note (the record of accepted configurations is ``services.policy_gate``). The candidate replays
the same inputs as an artifact's gate (``Gate.inputs``).

The candidate's ``[policy]`` and ``[ml] bands`` are judged on the running configuration: every
other section (detectors, packs, the gate's own budgets and corpora) is the running one's, so a
candidate file cannot loosen the gate that judges it.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailsift.config.schema import Settings
from mailsift.core.errors import Overridable
from mailsift.core.findings import ArtifactState
from mailsift.core.rollout import Deployment
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.rollout.gate import GateReport, run_gate
from mailsift.services.access import Principal, require
from mailsift.services.policy_gate import accepted, config_version, note_policy, policy_target
from mailsift.services.rollout.gate import Gate
from mailsift.services.rollout.registry import Registry, RegistryPart

__all__ = ["PolicyChanges"]


def _trial_settings(running: Settings, candidate: Settings) -> Settings:
    ml = running.ml.model_copy(update={"bands": candidate.ml.bands})
    return running.model_copy(update={"policy": candidate.policy, "ml": ml})


class PolicyChanges(RegistryPart):
    def __init__(self, registry: Registry, gate: Gate) -> None:
        super().__init__(registry)
        self.gate = gate

    def config_version(self, settings: Settings | None = None) -> str:
        return config_version(settings or self.settings)

    def check_config(self, actor: Principal, candidate: Settings, *,
                     corpora: Iterable[tuple[str, str]] = (), recent: int | None = None,
                     source: str = "") -> GateReport:
        """The gate for a configuration: the gate's inputs through the running policy and the
        candidate's; the result is audited (``rollout.check`` on ``policy@VERSION``)."""
        require(actor, "rollout.read")
        version = config_version(candidate)
        dep = Deployment("policy", "config", version, ArtifactState.SHADOW, source)
        options = ScanOptions(offline=True, rollout=self.registry.state())
        active = build_pipeline(self.settings, options)
        trial = build_pipeline(_trial_settings(self.settings, candidate), options)
        known = [("ham", p) for p in self.settings.rollout.known_good]
        recent = self.settings.rollout.recent_messages if recent is None else recent
        report = run_gate(self.settings, active, trial, dep,
                          self.gate.inputs([*known, *corpora], recent))
        report.notes.append(f"running policy {config_version(self.settings)}, candidate "
                            f"{version}" + (f" ({source})" if source else ""))
        self.store.audit.append(actor.name, "rollout.check", policy_target(version), {
            "passed": report.passed, "reasons": report.reasons, "version": version,
            "source": source, "known_good": report.known_good,
            "newly_quarantined": len(report.newly_quarantined),
            "let_through": len(report.let_through), "at": self.clock()})
        return report

    def accept_config(self, actor: Principal, candidate: Settings, *,
                      force: bool = False, reason: str = "") -> str:
        """Accept a configuration's policy without a passing gate: forced, with a reason,
        audited as ``rollout.force`` and alerted. ``already accepted`` when it needs none."""
        require(actor, "rollout.write")
        version = config_version(candidate)
        target = policy_target(version)
        if accepted(self.store, version):
            return "already accepted"
        last = self.store.audit.entries(action="rollout.check", target=target, limit=1)
        problems = list(last[0].detail.get("reasons") or []) if last else \
            ["the gate has not run (mailsift rollout check-config)"]
        if not force or not reason.strip():
            raise Overridable(f"policy {version} has not passed the gate: "
                              + "; ".join(problems))
        self.store.audit.append(actor.name, "rollout.force", target, {
            "version": version, "overridden": problems, "reason": reason})
        self.alerts.raise_alert("forced_promotion", target,
                                f"{actor.name} forced policy {version}: "
                                + "; ".join(problems) + f" ({reason})")
        return "forced"

    def note_policy(self) -> str:
        """At gateway start: record the first policy, warn and alert on an unchecked one."""
        return note_policy(self.store, self.settings, self.alerts)
