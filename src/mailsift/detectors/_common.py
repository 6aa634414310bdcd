"""Small pieces shared by the content/reputation detectors: the code book (code -> family,
default weight, description; weights overridable from settings) and evidence collection that
yields one finding per code, whatever the number of offending links or files."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field

from mailsift.core.context import ScanContext
from mailsift.core.errors import ConfigError
from mailsift.core.findings import Finding
from mailsift.detectors.spec import CodeSpec

__all__ = ["CodeBook", "Collector", "installed", "recipients"]

MAX_EVIDENCE = 5


class CodeBook:
    """The codes a detector may emit. An override for an unknown code fails startup."""

    def __init__(self, detector: str, codes: Mapping[str, CodeSpec],
                 overrides: Mapping[str, float] | None = None) -> None:
        unknown = sorted(set(overrides or {}) - set(codes))
        if unknown:
            raise ConfigError(f"[{detector}] weights: unknown code(s) {', '.join(unknown)}",
                              source=detector)
        self.detector = detector
        self.codes = dict(codes)
        self.weights = {c: float((overrides or {}).get(c, spec.weight))
                        for c, spec in codes.items()}

    def finding(self, code: str, evidence: tuple[str, ...], *, weight: float | None = None,
                family: str | None = None, artifact: str = "", version: str = "") -> Finding:
        spec = self.codes[code]
        return Finding(code=code, weight=self.weights[code] if weight is None else weight,
                       evidence=evidence[:MAX_EVIDENCE], detector=self.detector,
                       category=spec.family if family is None else family,
                       description=spec.description,
                       artifact=artifact, version=version)


@dataclass
class Collector:
    """Evidence grouped by code, in first-seen order, de-duplicated."""

    book: CodeBook
    evidence: dict[str, list[str]] = field(default_factory=dict)
    artifacts: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add(self, code: str, evidence: str, artifact: tuple[str, str] | None = None) -> None:
        items = self.evidence.setdefault(code, [])
        if evidence not in items and len(items) < MAX_EVIDENCE:
            items.append(evidence)
        if artifact and code not in self.artifacts:
            self.artifacts[code] = artifact

    def __contains__(self, code: str) -> bool:
        return code in self.evidence

    def findings(self) -> list[Finding]:
        out = []
        for code, items in self.evidence.items():
            artifact, version = self.artifacts.get(code, ("", ""))
            out.append(self.book.finding(code, tuple(items), artifact=artifact, version=version))
        return out


def recipients(ctx: ScanContext) -> tuple[str, ...]:
    """Envelope recipients, or To/Cc when the message is scanned without an envelope."""
    if ctx.envelope.rcpt_to:
        return tuple(r.lower() for r in ctx.envelope.rcpt_to)
    msg = ctx.message
    return tuple(dict.fromkeys(a.addr.lower() for a in (*msg.to, *msg.cc) if a.addr))


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (looked up, not imported: oletools costs ~0.25 s)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
