"""The gate as a use case: the inputs it replays (known-good corpora, the shipped robustness
set, reported ham, recent stored traffic), the replay through the enforced set and a candidate,
and the checks of a staged version and of a single rule. The judging itself is pure and lives in
``mailsift.rollout.gate``; this module feeds it from the store and records the outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from mailsift.core.envelope import Envelope
from mailsift.core.errors import InputError
from mailsift.core.findings import ArtifactState
from mailsift.core.rollout import Deployment, RolloutState
from mailsift.mailflow.versions import FLOW_KIND
from mailsift.parsing.sources import iter_messages
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.rollout.gate import (
    GateInput,
    GateReport,
    Scanner,
    candidate_state,
    judge_shadow,
    run_gate,
)
from mailsift.rollout.robustness import ROBUSTNESS_SOURCE, robustness_cases
from mailsift.services.access import Principal, require
from mailsift.services.report_corpus import reported_ham_inputs
from mailsift.services.rollout.registry import Registry
from mailsift.services.rollout.rule_states import pack_of_rule, rule_trial_state, shadow_rules
from mailsift.store.query import TraceQuery

__all__ = ["Gate"]


class Gate:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def inputs(self, corpora: Iterable[tuple[str, str]], recent: int) -> Iterator[GateInput]:
        """What the gate replays: ``corpora`` as (label, path), the shipped robustness set,
        reported ham and up to ``recent`` stored messages."""
        store, settings = self.registry.store, self.registry.settings
        for label, path in corpora:
            for msg_id, raw in iter_messages([path]):
                yield GateInput(source=Path(path).name, label=label, id=msg_id, raw=raw)
        # the shipped robustness set, on every check: its legitimate mail is known-good, and
        # the candidate must not let through a lure the active set catches
        for case in robustness_cases() if settings.rollout.robustness_set else ():
            yield GateInput(ROBUSTNESS_SOURCE, case.label, case.id, case.raw,
                            must_catch=case.label == "threat")
        seen: set[str] = set()  # a reported message is not replayed again as traffic
        if settings.rollout.reported_ham:
            yield from reported_ham_inputs(store, seen)
        if recent:
            page = store.trace.search(TraceQuery(), limit=recent)
            for item in page.items:
                if item.message in seen:
                    continue
                seen.add(item.message)
                try:
                    raw = store.trace.raw(item.message)
                except Exception:  # original not kept (retention): nothing to replay
                    continue
                rec = store.trace.get(item.message)
                env = Envelope(mail_from=rec.mail_from if rec else None,
                               rcpt_to=tuple(rec.rcpt_to) if rec else ())
                yield GateInput("stored-traffic", "traffic", item.message, raw, env)

    def check(self, actor: Principal, name: str, version: str | None = None, *,
              corpora: Iterable[tuple[str, str]] = (), recent: int | None = None) -> GateReport:
        """Replay the candidate against the active set and record the report on it."""
        require(actor, "rollout.read")
        registry = self.registry
        dep = registry.find(name, version)
        current = registry.state()
        report = self.replay(current, candidate_state(current, dep), dep, corpora, recent)
        judge_shadow(report, registry.shadow_diff(dep), registry.settings.rollout.traffic_budget)
        report.shadow_rules = shadow_rules(dep, current.rule_states)
        if report.shadow_rules:
            report.notes.append(
                f"{len(report.shadow_rules)} rule(s) stay in shadow after this promotion "
                f"({', '.join(report.shadow_rules)}): promoting does not make them act; "
                "'mailsift rollout rule ID --state canary|active' is gated on each one's effect")
        registry.store.rollout.set_state(dep.kind, dep.name, dep.version, dep.state,
                                         gate={**report.to_dict(), "at": registry.clock()})
        registry.store.audit.append(actor.name, "rollout.check", f"{dep.artifact}@{dep.version}",
                                    {"passed": report.passed, "reasons": report.reasons})
        return report

    def replay(self, current: RolloutState, trial_state: RolloutState, dep: Deployment,
               corpora: Iterable[tuple[str, str]] = (), recent: int | None = None, *,
               rule: str | None = None) -> GateReport:
        """The gate's replay: every input with the enforced set and with ``trial_state``."""
        settings = self.registry.settings
        options = ScanOptions(offline=True)
        pipeline = build_pipeline(settings, replace(options, rollout=current))
        active: Scanner = pipeline
        trial: Scanner
        if dep.kind == FLOW_KIND:  # the same scan, then the enforced and the candidate rules
            active, trial = self.registry.flow.gate_scans(pipeline, current, dep)
        else:
            trial = build_pipeline(settings, replace(options, rollout=trial_state))
        known = [("ham", p) for p in settings.rollout.known_good]
        return run_gate(settings, active, trial, dep, self.inputs(
            [*known, *corpora],
            settings.rollout.recent_messages if recent is None else recent), rule=rule)

    def check_rule(self, actor: Principal, rule: str, state: str = "active") -> GateReport:
        """The gate for one rule: what changes when it acts (with the rest of the set)."""
        require(actor, "rollout.read")
        registry = self.registry
        target = registry.rule_target(rule, state) or ArtifactState.ACTIVE
        current = registry.state()
        pack = pack_of_rule(rule, current.deployments)
        if pack is None:
            raise InputError(f"rule {rule} is in no registered pack version (rollout status)")
        report = self.replay(current, rule_trial_state(current, rule, target), pack, rule=rule)
        registry.store.audit.append(actor.name, "rollout.check", f"rule:{rule}",
                                    {"passed": report.passed, "reasons": report.reasons})
        return report
