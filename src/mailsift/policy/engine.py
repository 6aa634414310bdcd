"""The verdict: one pure function applying the precedence table (docs/precedence.md).

    0 guardrail        parser/protocol limits -> reject or tempfail (configurable per code)
    1 advanced delivery SecOps mailboxes, approved phishing simulations -> deliver, recorded
    2 detection        family scores vs thresholds; first category in precedence order wins
    3 admin block      raises the category (sender/domain/IP: SPAM_HIGH, URL: PHISH_HIGH,
                       file hash: MALWARE) and decides: at least ``block_action`` (quarantine
                       or reject), never delivered or junked; block beats every allow
    4 admin allow      sender/domain allows need aligned auth; they lower SPAM_HIGH, SPAM, BULK,
                       SPOOF, IMPERSONATION_* and (auth-gated) PHISH, never MALWARE or PHISH_HIGH
                       - except a time-boxed incident allow, which also lowers PHISH_HIGH (same
                       auth rule for sender/domain entries) but never MALWARE
    5 user lists       a recipient's safe/blocked senders choose only among SPAM, BULK, CLEAN
    6 recipient policy category -> action from the recipient's first matching policy
    7 rollout          shadow findings never act; canary findings act only in scope;
                       monitor mode turns every action into tagging
    8 detector error   an error or timeout is never "clean": on_error tempfail/deliver_tagged

Scores only compare within a family; nothing is summed across categories.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from mailsift.config.schema import PolicySettings
from mailsift.core.auth import AuthResults
from mailsift.core.findings import ArtifactState, Finding
from mailsift.core.lists import ListEntry, ListSnapshot
from mailsift.core.rollout import in_scope
from mailsift.core.verdict import (
    DETECTED,
    FAMILIES,
    Action,
    Category,
    DecisionStep,
    Override,
    Verdict,
)
from mailsift.policy.lists import MessageFacts, domain_match, entry_matches, ip_match, match_entries
from mailsift.policy.presets import ResolvedPolicy, choose_policy

__all__ = ["ERROR_CODES", "PolicyInput", "decide"]

ERROR_CODES = frozenset({"DETECTOR_ERROR", "DETECTOR_TIMEOUT"})
_BLOCK_CATEGORY = {
    "sender": Category.SPAM_HIGH, "domain": Category.SPAM_HIGH, "ip": Category.SPAM_HIGH,
    "spoof_pair": Category.SPOOF, "url": Category.PHISH_HIGH, "hash": Category.MALWARE,
}
_ALLOW_LOWERS = frozenset({
    Category.SPAM_HIGH, Category.SPAM, Category.BULK, Category.SPOOF,
    Category.IMPERSONATION_USER, Category.IMPERSONATION_DOMAIN, Category.PHISH,
    Category.PHISH_SUSPECT,
})
_USER_CHOICE = frozenset({Category.SPAM, Category.BULK, Category.CLEAN})


@dataclass(frozen=True, slots=True)
class PolicyInput:
    """Everything policy reads about one message. ``canary_scopes`` maps an artifact name to the
    recipients (addresses or ``@domain``) in its canary scope."""

    findings: tuple[Finding, ...]
    facts: MessageFacts = field(default_factory=MessageFacts)
    auth: AuthResults | None = None
    lists: ListSnapshot | None = None
    now: float = 0.0
    canary_scopes: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({}))


def _in_canary(artifact: str, recipient: str | None,
               scopes: Mapping[str, tuple[str, ...]]) -> bool:
    """Scope members are addresses, ``@domain`` (and its subdomains) or ``%N`` (a stable N%
    of recipients, chosen by hashing the address so a recipient stays in or out)."""
    return in_scope(scopes.get(artifact, ()), recipient)


def _acting(inp: PolicyInput, recipient: str | None) -> tuple[list[Finding], list[Override]]:
    """Findings that act for this recipient: active ones, plus canary ones in scope. A pack
    version in canary replaces the active version of that pack for recipients in its scope
    (scope key = the artifact); a single rule in canary (scope key ``rule:<ID>``) just acts."""
    scopes = inp.canary_scopes
    replaced = {a for a in scopes if not a.startswith("rule:")
                and _in_canary(a, recipient, scopes)}
    acting: list[Finding] = []
    for f in inp.findings:
        if f.state is ArtifactState.ACTIVE:
            if f.artifact not in replaced:
                acting.append(f)
        elif f.state is ArtifactState.CANARY and (
                _in_canary(f"rule:{f.code}", recipient, scopes) or f.artifact in replaced):
            acting.append(f)
    notes = [Override(DecisionStep.ROLLOUT, "canary", a, "canary version acts for this recipient")
             for a in sorted(replaced)]
    return acting, notes


def _family_scores(findings: Sequence[Finding]) -> dict[str, float]:
    scores = dict.fromkeys(FAMILIES, 0.0)
    for f in findings:
        if f.category in scores:
            scores[f.category] += f.weight
    return scores


def _detect(scores: Mapping[str, float], policy: ResolvedPolicy) -> Category:
    t = policy.thresholds
    for category in DETECTED:  # precedence order
        family = category.family
        if family is not None and scores.get(family, 0.0) >= t.of(category):
            return category
    return Category.CLEAN


def _strictest_category(a: Category, b: Category) -> Category:
    return a if a.rank <= b.rank else b


def _describe_entry(entry: ListEntry) -> str:
    return f"{entry.kind}:{entry.value}" + (f" (#{entry.entry_id})" if entry.entry_id else "")


class _Decision:
    """Working state while walking the precedence table for one recipient."""

    def __init__(self, detected: Category) -> None:
        self.category = detected
        self.step = DecisionStep.DETECTION
        self.blocked = False
        self.overrides: list[Override] = []

    def override(self, step: DecisionStep, kind: str, entry: str, effect: str,
                 note: str = "") -> None:
        self.overrides.append(Override(step, kind, entry, effect, note))


def _apply_lists(inp: PolicyInput, recipient: str | None, d: _Decision) -> None:
    facts = inp.facts
    blocks = [e for e in match_entries(inp.lists, facts, inp.now, "admin") if e.action == "block"]
    for entry in blocks:  # step 3: the block decides, whatever detection said
        implied = _BLOCK_CATEGORY.get(entry.kind, Category.SPAM_HIGH)
        d.category = _strictest_category(d.category, implied)
        d.step, d.blocked = DecisionStep.ADMIN_BLOCK, True
        d.override(DecisionStep.ADMIN_BLOCK, "block", _describe_entry(entry),
                   f"category {d.category.value}", entry.note)
    if blocks:
        return  # block beats allow, incident allows included
    if _incident_allow(inp, d):
        return
    _admin_allow(inp, d)
    _user_lists(inp, recipient, d)


def _not_applied(d: _Decision, kind: str, entry: ListEntry, why: str) -> None:
    d.override(DecisionStep.ADMIN_ALLOW, kind, _describe_entry(entry), "not applied", why)


def _incident_allow(inp: PolicyInput, d: _Decision) -> bool:
    """Step 4's audited exception for mass false positives: it lowers even PHISH_HIGH, but a
    sender or domain entry needs aligned authentication (a trusted ARC sealer counts, through
    compauth) and nothing ever delivers MALWARE."""
    if d.category is Category.CLEAN or inp.lists is None:
        return False
    facts = inp.facts
    for entry in inp.lists.entries:
        if not (entry.scope.startswith("incident") and entry.action == "allow"
                and entry.active(inp.now) and entry_matches(entry, facts)):
            continue
        if d.category is Category.MALWARE:
            _not_applied(d, "incident_allow", entry, "nothing delivers malware")
            continue
        if entry.kind in ("sender", "domain") and not facts.auth_aligned:
            _not_applied(d, "incident_allow", entry,
                         "sender is not authenticated (no aligned SPF/DKIM, no trusted ARC)")
            continue
        d.override(DecisionStep.ADMIN_ALLOW, "incident_allow", _describe_entry(entry),
                   f"{d.category.value} -> clean", entry.note)
        d.category, d.step = Category.CLEAN, DecisionStep.ADMIN_ALLOW
        return True
    return False


def _admin_allow(inp: PolicyInput, d: _Decision) -> None:
    facts = inp.facts
    allows = [e for e in match_entries(inp.lists, facts, inp.now, "admin") if e.action == "allow"]
    for entry in allows:  # step 4
        if d.category not in _ALLOW_LOWERS:
            if d.category is not Category.CLEAN:
                d.override(DecisionStep.ADMIN_ALLOW, "allow", _describe_entry(entry),
                           "not applied", f"{d.category.value} cannot be lowered by an allow")
            continue
        if entry.kind in ("sender", "domain") and not facts.auth_aligned:
            d.override(DecisionStep.ADMIN_ALLOW, "allow", _describe_entry(entry), "not applied",
                       "sender is not authenticated (no aligned SPF/DKIM)")
            continue
        if entry.kind == "ip" and d.category in (Category.PHISH, Category.PHISH_SUSPECT):
            d.override(DecisionStep.ADMIN_ALLOW, "allow", _describe_entry(entry), "not applied",
                       "an IP allow does not lower phishing")
            continue
        if entry.kind == "spoof_pair" and d.category is not Category.SPOOF:
            continue
        d.override(DecisionStep.ADMIN_ALLOW, "allow", _describe_entry(entry),
                   f"{d.category.value} -> clean", entry.note)
        d.category, d.step = Category.CLEAN, DecisionStep.ADMIN_ALLOW
        break


def _user_lists(inp: PolicyInput, recipient: str | None, d: _Decision) -> None:
    facts = inp.facts
    if recipient and d.category in _USER_CHOICE:  # step 5
        user = f"user:{recipient.lower()}"
        for entry in match_entries(inp.lists, facts, inp.now, user):
            if entry.action == "block":
                d.override(DecisionStep.USER_LIST, "user_block", _describe_entry(entry),
                           f"{d.category.value} -> spam")
                d.category, d.step = Category.SPAM, DecisionStep.USER_LIST
                break
            if facts.auth_aligned or entry.kind == "ip":
                d.override(DecisionStep.USER_LIST, "user_safe", _describe_entry(entry),
                           f"{d.category.value} -> clean")
                d.category, d.step = Category.CLEAN, DecisionStep.USER_LIST
                break


def _bypass(settings: PolicySettings, inp: PolicyInput, recipient: str | None) -> Override | None:
    adv = settings.advanced_delivery
    if recipient and recipient.lower() in (m.lower() for m in adv.secops_mailboxes):
        return Override(DecisionStep.BYPASS, "secops_mailbox", recipient, "delivered unfiltered")
    facts = inp.facts
    if adv.simulation_domains and adv.simulation_ips:
        domain_ok = any(domain_match(facts.from_domain, d) for d in adv.simulation_domains)
        ip_ok = any(ip_match(facts.client_ip, n) for n in adv.simulation_ips)
        if domain_ok and ip_ok:
            return Override(DecisionStep.BYPASS, "phish_simulation",
                            f"{facts.from_domain} via {facts.client_ip}", "delivered unfiltered")
    return None


def _dmarc_action(settings: PolicySettings, inp: PolicyInput, category: Category,
                  action: Action) -> tuple[Action, Override | None]:
    dmarc = inp.auth.dmarc if inp.auth else None
    if category is not Category.SPOOF or dmarc is None or settings.dmarc_enforcement == "ignore":
        return action, None
    wanted = {"reject": Action.REJECT, "quarantine": Action.QUARANTINE}.get(dmarc.disposition)
    if wanted is None:
        return action, None
    if settings.dmarc_enforcement == "junk":
        wanted = Action.JUNK
    if wanted.strictness <= action.strictness:
        return action, None
    note = f"DMARC p={dmarc.policy} for {dmarc.from_domain}"
    return wanted, Override(DecisionStep.RECIPIENT_POLICY, "dmarc", dmarc.from_domain,
                            f"action {wanted.value}", note)


def decide(inp: PolicyInput, settings: PolicySettings, recipient: str | None = None) -> Verdict:
    """The verdict for one recipient (``None``: the envelope named none)."""
    policy = choose_policy(settings, recipient)
    acting, notes = _acting(inp, recipient)
    scores = _family_scores(acting)
    detected = _detect(scores, policy)
    d = _Decision(detected)
    d.overrides.extend(notes)
    action: Action

    guard = next((f for f in acting if f.code in settings.guardrails), None)
    bypass = _bypass(settings, inp, recipient)
    errors = [f for f in acting if f.code in ERROR_CODES]
    if guard is not None:  # step 0
        action, d.step = Action(settings.guardrails[guard.code]), DecisionStep.GUARDRAIL
    elif bypass is not None:  # step 1
        d.overrides.append(bypass)
        action, d.step, d.category = Action.DELIVER, DecisionStep.BYPASS, Category.CLEAN
    else:
        _apply_lists(inp, recipient, d)  # steps 3-5
        action = policy.actions[d.category]  # step 6
        if d.blocked:  # an admin block is never delivered, not even to junk
            blocked = Action(settings.block_action)
            action = blocked if blocked.strictness > action.strictness else action
        action, dmarc_override = _dmarc_action(settings, inp, d.category, action)
        if dmarc_override is not None:
            d.overrides.append(dmarc_override)
        if errors and d.category is Category.CLEAN and d.step is DecisionStep.DETECTION:
            # step 8: an error never reads as clean
            action = Action.TEMPFAIL if policy.on_error == "tempfail" else Action.TAG
            d.step = DecisionStep.DETECTOR_ERROR
        if settings.monitor and action is not Action.DELIVER:  # step 7
            d.override(DecisionStep.ROLLOUT, "monitor", "policy.monitor",
                       f"{action.value} -> tag")
            action, d.step = Action.TAG, DecisionStep.ROLLOUT
        elif d.step is DecisionStep.DETECTION and d.category is not Category.CLEAN:
            pass  # detection decided the category; the action comes from the policy table

    family = d.category.family or detected.family
    reasons = tuple(f for f in acting if family and f.category == family) if family else ()
    if d.step is DecisionStep.GUARDRAIL and guard is not None:
        reasons = (guard,)
    elif d.step is DecisionStep.DETECTOR_ERROR:
        reasons = tuple(errors)
    score = scores.get(family, 0.0) if family else max(scores.values(), default=0.0)
    tags = tuple(f.code for f in acting if f.code in ERROR_CODES)
    return Verdict(
        category=d.category,
        action=action,
        score=score,
        decided_by=d.step,
        explanation=_explain(d, detected, action, scores, policy, reasons, guard),
        detected=detected,
        reasons=reasons,
        findings=inp.findings,
        overrides=tuple(d.overrides),
        recipient=recipient,
        policy=f"{policy.name} ({policy.preset})",
        family_scores=MappingProxyType({k: v for k, v in scores.items() if v}),
        tags=tags,
    )


def _explain(d: _Decision, detected: Category, action: Action, scores: Mapping[str, float],
             policy: ResolvedPolicy, reasons: Sequence[Finding], guard: Finding | None) -> str:
    if d.step is DecisionStep.GUARDRAIL and guard is not None:
        return f"{action.value}: protocol guardrail {guard.code} ({'; '.join(guard.evidence)})"
    if d.step is DecisionStep.BYPASS:
        return f"{action.value}: advanced delivery ({d.overrides[-1].kind}), not filtered"
    parts: list[str] = []
    if detected is Category.CLEAN:
        parts.append("no category reached its threshold")
    else:
        fam = detected.family
        threshold = policy.thresholds.of(detected)
        top = ", ".join(f"{f.code} ({f.weight:g})" for f in
                        sorted(reasons, key=lambda f: -f.weight)[:5]) if reasons else ""
        parts.append(f"{detected.value}: {fam} score {scores.get(fam or '', 0.0):g} >= "
                     f"{threshold:g}"
                     + (f" from {top}" if top else ""))
    for o in d.overrides:
        if o.effect != "not applied":
            parts.append(f"{o.kind} {o.entry}: {o.effect}")
    if d.step is DecisionStep.DETECTOR_ERROR:
        parts.append("a detector failed, so the message is not treated as clean")
    parts.append(f"action {action.value} by policy {policy.name} ({policy.preset})")
    return "; ".join(parts)
