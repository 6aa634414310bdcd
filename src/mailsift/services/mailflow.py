"""Listing and testing mail-flow rules (CLI ``mailsift mailflow``, ``/v1/mailflow``).

``try_rules`` runs one message through the real scan pipeline and the flow step exactly as the
gateway does, and reports the direction, every rule that matched with what it did (or, in test
mode, would have done) and the final action per recipient. Nothing is recorded or delivered.
"""

from __future__ import annotations

from typing import Any, Protocol

from mailsift.config.mailflow import DirectionSettings, MailflowSettings
from mailsift.core.envelope import Envelope
from mailsift.core.result import ScanResult
from mailsift.delivery.headers import header_values
from mailsift.mailflow.engine import RuleSet
from mailsift.mailflow.step import FlowContext, FlowStep

__all__ = ["flow_report", "list_rules", "try_rules"]


class Scans(Protocol):
    def scan(self, raw: bytes, envelope: Envelope) -> ScanResult: ...


def list_rules(settings: MailflowSettings) -> list[dict[str, Any]]:
    """The rules in evaluation order (before-detection rules first), with what they do."""
    rs = RuleSet(settings)
    out = []
    for compiled in (*rs.before, *rs.after):
        r = compiled.rule
        out.append({
            "name": r.name, "mode": r.mode, "priority": r.priority, "stage": r.stage,
            "stop": r.stop,
            "if": r.if_.model_dump(exclude_defaults=True),
            "any": r.any.model_dump(exclude_defaults=True),
            "except": r.except_.model_dump(exclude_defaults=True),
            "then": r.then.model_dump(exclude_defaults=True),
        })
    return out


def try_rules(rules: MailflowSettings, direction: DirectionSettings, raw: bytes,
              envelope: Envelope, scans: Scans) -> dict[str, Any]:
    step = FlowStep(direction, rules)
    ctx = step.before(raw, envelope)
    result, out = step.after(ctx, scans.scan(ctx.raw, envelope), ctx.raw)
    return flow_report(rules, ctx, result, raw, out)


def flow_report(rules: MailflowSettings, ctx: FlowContext, result: ScanResult, raw: bytes,
                out: bytes) -> dict[str, Any]:
    """What the flow step did to one message: direction, each matching rule with its mode and
    effects, the final actions and whether the bytes changed."""
    modes = {r.name: r.mode for r in rules.rules}
    hits = [f for f in result.findings if f.detector == "mailflow"]
    return {
        "direction": ctx.direction.value,
        "why": ctx.why,
        "rules": [{"name": f.code.removeprefix("MAILFLOW:"),
                   "mode": modes.get(f.code.removeprefix("MAILFLOW:"), ""),
                   "effects": list(f.evidence)} for f in hits],
        "category": result.verdict.category.value,
        "action": result.verdict.action.value,
        "recipients": {r: v.action.value for r, v in result.recipients.items()},
        "subject": next(iter(header_values(out, "subject")), b"").decode("utf-8", "replace"),
        "explanation": result.verdict.explanation,
        "changed": out != raw,
    }
