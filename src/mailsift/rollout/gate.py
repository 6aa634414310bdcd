"""The promotion gate: replay a candidate against the active set before it may enforce.

In SpamAssassin's mass-check/RuleQA spirit: the candidate (a rule pack version, with the rest of
the active set) and the active set scan the same mail — known-good corpora, messages users
reported as not junk (once confirmed on triage) and recent stored traffic — and the gate reports
every verdict that changes, per-rule hit rates on ham and on spam/phish (with S/O, the share of a
rule's hits that were spam), and the messages the candidate would newly quarantine. It refuses
promotion when the candidate quarantines known-good mail beyond the budget (default: none of the
known-good set, at most 0.01% of ham-classified traffic), when it replayed fewer known-good
messages than ``min_known_good`` (no evidence is not a pass), when it lets through a threat it
must keep catching (``must_catch``: the robustness set's lures) that the active set junks or
worse, and (``judge_shadow``) when the version's shadow diff shows delivered mail moving to
quarantine.

Known-good input is every ``GateInput`` labelled ``ham``, whatever its source (``known_good``
corpora, confirmed not-junk reports, extra ``--corpus ham:PATH``, the shipped robustness set's
legitimate mail): all of it counts toward the minimum and against ``golden_budget``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from mailsift.config.schema import Settings
from mailsift.core.envelope import Envelope
from mailsift.core.findings import ArtifactState
from mailsift.core.result import ScanResult
from mailsift.core.rollout import Deployment, RolloutState
from mailsift.core.verdict import Action
from mailsift.rollout.robustness import ROBUSTNESS_SOURCE, caught

__all__ = ["GateInput", "GateReport", "RuleStat", "Scanner", "candidate_state", "judge_shadow",
           "run_gate", "shadow_problem"]

_QUARANTINING = (Action.QUARANTINE, Action.REJECT)


class Scanner(Protocol):
    """What the gate replays through: a scan pipeline, or one followed by flow rules."""

    def scan(self, raw: bytes, envelope: Envelope | None = None, *,
             message_id: str = "") -> ScanResult: ...


@dataclass(frozen=True, slots=True)
class GateInput:
    """One message to replay: where it came from, its label (ham/spam/phish/threat, or
    ``traffic`` for stored mail labelled by the active verdict) and its bytes. ``must_catch``
    marks a threat the candidate must not let through (below junk) when the active set catches
    it."""

    source: str
    label: str
    id: str
    raw: bytes
    envelope: Envelope = field(default_factory=Envelope)
    must_catch: bool = False


@dataclass
class RuleStat:
    rule: str
    hits: Counter[str] = field(default_factory=Counter)

    def rate(self, label: str, totals: Counter[str]) -> float:
        return self.hits[label] / totals[label] if totals[label] else 0.0

    def s_o(self) -> float:
        """Share of the rule's labelled hits that were spam, phish or another threat
        (SpamAssassin's S/O)."""
        bad = self.hits["spam"] + self.hits["phish"] + self.hits["threat"]
        total = bad + self.hits["ham"]
        return bad / total if total else 0.0


@dataclass
class GateReport:
    candidate: str
    totals: Counter[str] = field(default_factory=Counter)
    per_source: Counter[str] = field(default_factory=Counter)
    changes: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    newly_quarantined: list[dict[str, Any]] = field(default_factory=list)
    # known-good mail quarantined with and without the candidate: not the candidate's doing (it
    # refuses nothing) but worth an operator's eye, e.g. mail users confirmed as legitimate
    still_quarantined: list[dict[str, Any]] = field(default_factory=list)
    # threats that must stay caught (the robustness set's lures): caught by the active set,
    # below junk with the candidate
    let_through: list[dict[str, Any]] = field(default_factory=list)
    rules: dict[str, RuleStat] = field(default_factory=dict)
    golden_hits: int = 0
    golden_sources: Counter[str] = field(default_factory=Counter)
    traffic_ham: int = 0
    traffic_new: int = 0
    known_good: int = 0  # ham-labelled messages replayed, from every source
    known_good_sources: Counter[str] = field(default_factory=Counter)
    shadow_rules: list[str] = field(default_factory=list)  # stay in shadow once promoted
    notes: list[str] = field(default_factory=list)  # said, but refusing nothing
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "passed": self.passed,
            "reasons": self.reasons,
            "messages": dict(self.totals),
            "per_source": dict(self.per_source),
            "changes": [{"source": s, "before": b, "after": a, "count": n}
                        for (s, b, a), n in sorted(self.changes.items())],
            "newly_quarantined": self.newly_quarantined,
            "still_quarantined": self.still_quarantined,
            "let_through": self.let_through,
            "known_good": self.known_good,
            "known_good_sources": dict(self.known_good_sources),
            "shadow_rules": self.shadow_rules,
            "notes": self.notes,
            "golden_hits": self.golden_hits,
            "golden_sources": dict(self.golden_sources),
            "traffic": {"ham_classified": self.traffic_ham, "newly_quarantined": self.traffic_new},
            "rules": [{"rule": r.rule, "hits": dict(r.hits),
                       "ham_rate": r.rate("ham", self.totals),
                       "spam_rate": r.rate("spam", self.totals),
                       "phish_rate": r.rate("phish", self.totals), "s_o": r.s_o()}
                      for r in sorted(self.rules.values(), key=lambda r: r.rule)],
        }


def candidate_state(current: RolloutState, candidate: Deployment) -> RolloutState:
    """The rollout state in which ``candidate`` is active (other versions of it retired)."""
    others = tuple(
        replace(d, state=ArtifactState.RETIRED)
        if d.kind == candidate.kind and d.name == candidate.name else d
        for d in current.deployments if d.version != candidate.version or d.name != candidate.name
    )
    return replace(current, deployments=(*others, replace(candidate, state=ArtifactState.ACTIVE)),
                   version=f"{current.version}+{candidate.version}")


def _summary(result: ScanResult) -> str:
    return f"{result.verdict.category.value}/{result.verdict.action.value}"


def _deciders(result: ScanResult, fired: set[str]) -> list[str]:
    """The candidate's findings that made the verdict: its acting findings, and flow rules
    (``MAILFLOW:NAME``) whose override raised the action."""
    codes = {f.code for f in result.verdict.reasons if f.code in fired}
    codes |= {f"MAILFLOW:{o.entry}" for o in result.verdict.overrides
              if o.kind.startswith("mailflow") and "->" in o.effect} & fired
    return sorted(codes)


def run_gate(settings: Settings, active: Scanner, trial: Scanner, candidate: Deployment,
             messages: Iterable[GateInput], *, rule: str | None = None) -> GateReport:
    """Scan every message with both pipelines and judge the candidate against the budgets.
    With ``rule`` the candidate is that one rule of ``candidate``'s pack (its own gate)."""
    name = f"{candidate.artifact}@{candidate.version}"
    report = GateReport(candidate=f"rule:{rule} ({name})" if rule else name)
    budget = settings.rollout
    for item in messages:
        before = active.scan(item.raw, item.envelope, message_id=item.id)
        after = trial.scan(item.raw, item.envelope, message_id=item.id)
        label = item.label
        if label == "traffic":
            label = "ham" if before.verdict.action in (Action.DELIVER, Action.TAG) else "other"
            if label == "ham":
                report.traffic_ham += 1
        report.totals[label] += 1
        report.per_source[item.source] += 1
        if item.label == "ham":
            report.known_good += 1
            report.known_good_sources[item.source] += 1
        fired = {f.code for f in after.findings
                 if f.artifact == candidate.artifact and f.version == candidate.version
                 and (rule is None or f.code == rule)}
        for code in fired:
            report.rules.setdefault(code, RuleStat(code)).hits[label] += 1
        b, a = _summary(before), _summary(after)
        if b != a:
            report.changes[(item.source, b, a)] += 1
        if item.must_catch and caught(before.verdict.action) \
                and not caught(after.verdict.action):
            report.let_through.append({
                "source": item.source, "id": item.id, "subject": after.message.subject[:120],
                "before": b, "after": a})
        newly = (after.verdict.action in _QUARANTINING
                 and before.verdict.action not in _QUARANTINING)
        if newly:
            report.newly_quarantined.append({
                "source": item.source, "label": label, "id": item.id,
                "subject": after.message.subject[:120], "before": b, "after": a,
                "rules": _deciders(after, fired),
            })
            if item.label == "ham":
                report.golden_hits += 1
                report.golden_sources[item.source] += 1
            elif item.label == "traffic" and label == "ham":
                report.traffic_new += 1
        elif item.label == "ham" and after.verdict.action in _QUARANTINING:
            report.still_quarantined.append({
                "source": item.source, "id": item.id, "subject": after.message.subject[:120],
                "verdict": a, "reasons": sorted(f.code for f in after.verdict.reasons)})
    if report.known_good < budget.min_known_good:
        # no evidence is not a pass: under keep_raw = "quarantine" stored traffic replays
        # nothing legitimate, and a gate over nothing once "passed" a rule that then quarantined
        # 41 legitimate messages in canary
        sources = ", ".join(f"{s} {n}" for s, n in sorted(report.known_good_sources.items()))
        report.reasons.append(
            f"replayed {report.known_good} known-good message(s), minimum "
            f"{budget.min_known_good}" + (f" ({sources})" if sources else "")
            + ": add [rollout] known_good corpora, confirm not-junk reports or keep "
            "[rollout] robustness_set on")
    elif report.known_good == 0:
        report.notes.append(
            "replayed no known-good message ([rollout] min_known_good = 0): nothing shows "
            "what this version does to legitimate mail")
    if report.golden_hits > budget.golden_budget:
        # name the sources: "reported-ham 1" says users confirmed that mail as legitimate
        sources = ", ".join(f"{s} {n}" for s, n in sorted(report.golden_sources.items()))
        report.reasons.append(
            f"quarantines {report.golden_hits} known-good message(s) (budget "
            f"{budget.golden_budget}; {sources})")
    if report.let_through:
        by_source: dict[str, list[str]] = {}
        for m in report.let_through:
            by_source.setdefault(m["source"], []).append(m["id"])
        for source, ids in sorted(by_source.items()):
            what = "robustness lure(s)" if source == ROBUSTNESS_SOURCE else f"{source} threat(s)"
            report.reasons.append(f"lets {len(ids)} {what} through: {', '.join(ids)}")
    if report.traffic_ham:
        share = report.traffic_new / report.traffic_ham
        if share > budget.traffic_budget:
            report.reasons.append(
                f"newly quarantines {share:.4%} of ham-classified traffic "
                f"({report.traffic_new}/{report.traffic_ham}; budget {budget.traffic_budget:.4%})")
    return report


def shadow_problem(diff: Mapping[str, Any], traffic_budget: float) -> str | None:
    """What the version's shadow diff (``store.rollout.shadow_diff``) says against it: mail the
    enforced set delivered that the version would have quarantined or rejected, beyond the
    share of ham-classified traffic the budget allows ("20 of 20 changed, deliver ->
    quarantine" must not pass)."""
    delivered = moved = 0
    for pair in diff.get("pairs", ()):
        if pair["actual"] in ("deliver", "tag"):
            delivered += int(pair["count"])
            if pair["shadow"] in ("quarantine", "reject"):
                moved += int(pair["count"])
    if not moved or moved / delivered <= traffic_budget:
        return None
    return (f"shadow diff: {moved} of {delivered} delivered message(s) would be quarantined or "
            f"rejected ({moved / delivered:.2%}; budget {traffic_budget:.4%})")


def judge_shadow(report: GateReport, diff: Mapping[str, Any], traffic_budget: float) -> None:
    problem = shadow_problem(diff, traffic_budget)
    if problem is not None:
        report.reasons.append(problem)
