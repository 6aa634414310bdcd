"""Explaining a scan result to a person (``mailsift scan --format text``)."""

from __future__ import annotations

from mailsift.core.findings import ArtifactState
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Verdict

__all__ = ["render_text"]


def _auth_lines(result: ScanResult) -> list[str]:
    if result.auth is None:
        return ["authentication: not checked (auth detector disabled)"]
    try:
        from mailsift.auth.explain import describe
    except ImportError:  # pragma: no cover - the auth package is part of the core install
        return [f"authentication: {result.auth.header or 'no results'}"]
    return describe(result.auth)


def _from_line(result: ScanResult) -> str:
    addr = result.message.from_addr
    if addr is None:
        return "(none)"
    return f"{addr.display_name} <{addr.addr}>" if addr.display_name else f"<{addr.addr}>"


def _verdict_line(v: Verdict) -> str:
    who = f"{v.recipient}: " if v.recipient else ""
    return (f"{who}{v.category.value.upper()} -> {v.action.value}  (score {v.score:g}, "
            f"decided by step {v.decided_by.value}, policy {v.policy})")


def render_text(result: ScanResult) -> str:
    msg = result.message
    v = result.verdict
    lines = [
        f"== message {result.id}",
        f"   From:    {_from_line(result)}",
        f"   Subject: {msg.subject[:120]}",
        f"   Verdict: {_verdict_line(v)}",
        f"   Why:     {v.explanation}",
    ]
    if len(result.recipients) > 1:
        lines.append("   Per recipient:")
        lines.extend(f"     {_verdict_line(rv)}" for rv in result.recipients.values())
    for o in v.overrides:
        lines.append(f"   Override ({o.step.value}): {o.kind} {o.entry}: {o.effect}"
                     + (f" - {o.note}" if o.note else ""))
    if result.findings:
        lines.append("   Findings:")
        for f in sorted(result.findings, key=lambda f: (-f.weight, f.code)):
            family = f.category or "info"
            state = "" if f.state is ArtifactState.ACTIVE else f" [{f.state.value}: does not act]"
            lines.append(f"     {f.weight:+5.1f} {family:<20} {f.code}{state}")
            if f.description:
                lines.append(f"           {f.description}")
            for ev in f.evidence[:4]:
                lines.append(f"           evidence: {ev[:160]}")
    else:
        lines.append("   Findings: none")
    lines.extend(f"   {line}" for line in _auth_lines(result))
    versions = ", ".join(f"{k}={val}" for k, val in sorted(result.versions.items()))
    lines.append(f"   Versions: {versions}")
    lines.append(f"   Scanned in {result.elapsed_ms:.1f} ms")
    return "\n".join(lines)
