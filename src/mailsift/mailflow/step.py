"""The mail-flow step of the gateway's decision path (docs/precedence.md, step 9).

``FlowStep.before`` runs before detection: it decides the direction and evaluates the
``stage = "before"`` rules on the message as it arrived (their edits are what detection
scans). ``FlowStep.after`` runs on the verdict: it evaluates the ``stage = "after"`` rules,
applies every enforced rule's edits, recipients and decisions, applies the outbound preset
(outbound junk is held in quarantine, never relayed) and writes it all into the result, so the
explanation and the trace show the direction and each rule with what it did -- or, in test
mode, what it would have done (nothing else changes in test mode).

Flow rules only make a verdict stricter, with one audited exception: ``bypass`` lowers the
listed categories to ``deliver``; it never lowers malware, and for mail from outside it
applies only to an authenticated sender (DMARC or composite authentication pass).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from mailsift.config.mailflow import DirectionSettings, MailflowSettings
from mailsift.core.envelope import Envelope
from mailsift.core.findings import ArtifactState, Finding
from mailsift.core.message import ParsedMessage
from mailsift.core.result import ScanResult
from mailsift.core.rollout import RolloutState, in_scope
from mailsift.core.verdict import Action, Category, DecisionStep, Override, Verdict
from mailsift.mailflow.direction import Direction, DirectionRules
from mailsift.mailflow.edits import add_banner, edit_headers
from mailsift.mailflow.engine import FlowFacts, Hit, RuleSet, authenticated, evaluate
from mailsift.mailflow.versions import FLOW_ARTIFACT, FlowSet, flow_sets
from mailsift.parsing.parser import parse_message

__all__ = ["FlowContext", "FlowStep", "describe"]

log = logging.getLogger("mailsift.mailflow")
STEP = DecisionStep.MAILFLOW


@dataclass(frozen=True, slots=True)
class FlowContext:
    """What ``before`` learned: the direction (and why), the before-stage hits and the bytes
    detection scans."""

    direction: Direction
    why: str
    raw: bytes
    hits: tuple[Hit, ...] = ()
    flow: FlowSet | None = None  # the rule set that acts on this message (canary or enforced)


def describe(hit: Hit) -> list[str]:
    """What a rule does, in words (the explanation, the trace, ``mailflow test``)."""
    t = hit.rule.then
    out: list[str] = []
    if t.prepend_subject:
        out.append(f"prepend subject {t.prepend_subject!r}")
    out += [f"add header {k}: {v}" for k, v in t.add_header.items()]
    out += [f"set header {k}: {v}" for k, v in t.set_header.items()]
    out += [f"remove header {k}" for k in t.remove_header]
    if t.banner_text or t.banner_html:
        out.append("add banner")
    if t.redirect:
        out.append("redirect to " + ", ".join(t.redirect))
    if t.bcc:
        out.append("bcc " + ", ".join(t.bcc))
    if t.reject:
        out.append(f"reject ({t.reject})")
    if t.quarantine:
        out.append("quarantine")
    if t.junk:
        out.append("deliver to junk")
    if t.bypass:
        out.append("bypass " + ", ".join(t.bypass))
    return out


def _edit(raw: bytes, hits: Sequence[Hit]) -> bytes:
    for hit in hits:
        if not hit.enforced:
            continue
        t = hit.rule.then
        raw = edit_headers(raw, prepend_subject=t.prepend_subject, add=t.add_header,
                           set_=t.set_header, remove=t.remove_header)
        if t.banner_text or t.banner_html:
            raw = add_banner(raw, t.banner_text, t.banner_html)
    return raw


class FlowStep:
    """The direction and the flow rules of one gateway. ``enforced`` is the rule set that acts
    (the registry's active version, or the configuration's rules); ``trials`` are staged
    versions: a canary acts instead of it for a message whose every recipient is in its scope,
    a shadow version (and a canary out of scope) only has its verdict recorded
    (``ScanResult.shadow``, keyed ``mailflow:rules@VERSION``), which the shadow diff and the
    gate read."""

    def __init__(self, direction: DirectionSettings, mailflow: MailflowSettings, *,
                 trust_received: bool = True,
                 sets: tuple[FlowSet, tuple[FlowSet, ...]] | None = None) -> None:
        self.direction = DirectionRules(direction, trust_received=trust_received)
        self.enforced, self.trials = sets or (FlowSet(RuleSet(mailflow)), ())
        self.rules = self.enforced.rules

    @classmethod
    def for_state(cls, direction: DirectionSettings, mailflow: MailflowSettings,
                  state: RolloutState | None, *, trust_received: bool = True) -> FlowStep:
        """The step for a rollout state: the registry's versions, else ``mailflow``."""
        return cls(direction, mailflow, trust_received=trust_received,
                   sets=flow_sets(mailflow, state))

    def _facts(self, raw: bytes, message: ParsedMessage, envelope: Envelope,
               direction: Direction, rules: RuleSet, verdict: Verdict | None = None,
               result: ScanResult | None = None) -> FlowFacts:
        return FlowFacts(message=message, mail_from=envelope.mail_from or "",
                         rcpt_to=envelope.rcpt_to, direction=direction.value,
                         client_ip=envelope.client_ip or "", size=len(raw), verdict=verdict,
                         auth=result.auth if result is not None else None,
                         vocabulary=rules.vocabulary)

    def _choose(self, envelope: Envelope) -> FlowSet:
        for trial in self.trials:
            if trial.state is ArtifactState.CANARY and envelope.rcpt_to and all(
                    in_scope(trial.scope, r) for r in envelope.rcpt_to):
                return trial
        return self.enforced

    def before(self, raw: bytes, envelope: Envelope) -> FlowContext:
        direction, why = self.direction.classify(raw, envelope.mail_from, envelope.rcpt_to,
                                                 envelope.client_ip)
        flow = self._choose(envelope)
        if not flow.rules.before:
            return FlowContext(direction, why, raw, flow=flow)
        facts = self._facts(raw, parse_message(raw), envelope, direction, flow.rules)
        hits = evaluate(flow.rules.before, facts)
        return FlowContext(direction, why, _edit(raw, hits), hits, flow)

    def after(self, ctx: FlowContext, result: ScanResult, raw: bytes
              ) -> tuple[ScanResult, bytes]:
        """The result with direction, rule hits and their decisions; the bytes to deliver."""
        flow = ctx.flow or self.enforced
        hits = ctx.hits
        if flow.rules.after:
            facts = self._facts(raw, result.message, result.envelope, ctx.direction,
                                flow.rules, result.verdict, result)
            hits = hits + evaluate(flow.rules.after, facts)
        out = _edit(raw, [h for h in hits if h.rule.stage == "after"])
        for hit in hits:
            if not hit.enforced:
                level = logging.WARNING if hit.rule.mode == "test_with_notify" else logging.INFO
                log.log(level, "%s: flow rule %s (%s) would have: %s", result.id, hit.name,
                        hit.rule.mode, "; ".join(describe(hit)))
        decided = _decide(result, ctx, hits, flow)
        shadow = {t.label: self._trial(t, ctx, result, raw) for t in self.trials
                  if t is not flow}
        if shadow:
            decided = replace(decided, shadow=MappingProxyType({**decided.shadow, **shadow}))
        return decided, out

    def _trial(self, trial: FlowSet, ctx: FlowContext, result: ScanResult, raw: bytes
               ) -> Verdict:
        """What a staged version would have decided for this message (nothing changes)."""
        facts = self._facts(raw, result.message, result.envelope, ctx.direction,
                            trial.rules, result.verdict, result)
        hits = evaluate(trial.rules.before, replace(facts, verdict=None, auth=None)) \
            + evaluate(trial.rules.after, facts)
        return _decide(result, replace(ctx, hits=()), hits, trial).verdict


class _Walk:
    """One verdict while the hits are applied: its action and the overrides added."""

    def __init__(self, v: Verdict) -> None:
        self.v = v
        self.action = v.action
        self.added: list[Override] = []

    def stricter(self, action: Action, hit: Hit, what: str) -> None:
        if action.strictness > self.action.strictness:
            self.added.append(Override(STEP, "mailflow", hit.name,
                                       f"{self.action.value} -> {action.value}", what))
            self.action = action

    def bypass(self, hit: Hit, ctx: FlowContext, auth_ok: bool) -> None:
        v = self.v
        if v.category is Category.MALWARE or self.action is Action.DELIVER:
            return
        if ctx.direction is Direction.INBOUND and not auth_ok:
            self.added.append(Override(
                STEP, "mailflow-bypass", hit.name, "not applied",
                "sender is not authenticated (no DMARC or composite auth pass)"))
            return
        log.warning("flow rule %s bypasses %s for %s (%s -> deliver)", hit.name,
                    v.category.value, v.recipient, self.action.value)
        self.added.append(Override(STEP, "mailflow-bypass", hit.name,
                                   f"{self.action.value} -> deliver",
                                   f"bypass {v.category.value}"))
        self.action = Action.DELIVER


def _one(v: Verdict, hits: Sequence[Hit], effects: Mapping[str, str], ctx: FlowContext,
         auth_ok: bool) -> Verdict:
    w = _Walk(v)
    for hit in hits:
        t = hit.rule.then
        if not hit.enforced:
            w.added.append(Override(STEP, "mailflow", hit.name,
                                    "would have: " + effects[hit.name], hit.rule.mode))
            continue
        w.added.append(Override(STEP, "mailflow", hit.name, effects[hit.name], "enforce"))
        if t.reject:
            w.stricter(Action.REJECT, hit, t.reject)
            w.added.append(Override(STEP, "mailflow-reject", hit.name, "", t.reject))
        elif t.quarantine:
            w.stricter(Action.QUARANTINE, hit, "rule quarantines")
        elif t.junk:
            w.stricter(Action.JUNK, hit, "rule delivers to junk")
        elif t.bypass and v.category.value in t.bypass:
            w.bypass(hit, ctx, auth_ok)
    if ctx.direction is Direction.OUTBOUND and w.action is Action.JUNK:
        w.added.append(Override(DecisionStep.RECIPIENT_POLICY, "direction", "outbound",
                                "junk -> quarantine",
                                "outbound spam is held, never junked to the outside"))
        w.action = Action.QUARANTINE
    parts = [f"direction {ctx.direction.value} ({ctx.why})"]
    for o in w.added:
        if o.kind == "mailflow" and o.note in ("enforce", "test", "test_with_notify"):
            parts.append(f"flow rule {o.entry} [{o.note}]: {o.effect}")
        elif o.kind in ("mailflow-bypass", "direction"):
            parts.append(f"{o.kind} {o.entry}: {o.effect}" + (f" ({o.note})" if o.note else ""))
    parts.append(f"final action {w.action.value}")
    return replace(v, action=w.action, direction=ctx.direction.value,
                   overrides=(*v.overrides, *w.added),
                   explanation="; ".join([v.explanation, *parts]))


def _decide(result: ScanResult, ctx: FlowContext, hits: Sequence[Hit], flow: FlowSet
            ) -> ScanResult:
    auth_ok = authenticated(result.auth)
    verdicts = dict(result.recipients)
    envelope = result.envelope
    enforced = [h for h in hits if h.enforced]
    redirect = [a for h in enforced for a in h.rule.then.redirect]
    bcc = [a for h in enforced for a in h.rule.then.bcc]
    if verdicts and (redirect or bcc):
        top = max(verdicts.values(), key=lambda v: v.action.strictness)
        if redirect:
            verdicts = {}
        for extra in (*redirect, *bcc):
            verdicts.setdefault(extra, replace(top, recipient=extra))
        envelope = replace(envelope, rcpt_to=tuple(verdicts))
    effects = {h.name: "; ".join(describe(h)) for h in hits}
    verdicts = {r: _one(v, hits, effects, ctx, auth_ok) for r, v in verdicts.items()}
    overall = _one(result.verdict, hits, effects, ctx, auth_ok)
    if verdicts:
        overall = max(verdicts.values(), key=lambda v: v.action.strictness)
    findings = tuple(Finding(
        code=f"MAILFLOW:{h.name}", weight=0.0, evidence=tuple(describe(h)), detector="mailflow",
        description=f"flow rule {h.name} ({h.rule.mode})",
        artifact=FLOW_ARTIFACT, version=flow.version,
        state=ArtifactState.ACTIVE if h.enforced else ArtifactState.SHADOW) for h in hits)
    return replace(result, verdict=overall, envelope=envelope,
                   recipients=MappingProxyType(verdicts),
                   findings=(*result.findings, *findings))
