"""The detector contract.

A detector looks at one message (``ScanContext``) and returns findings with evidence. It never
decides what happens to the message and never writes anywhere. Settings and I/O (resolver, sender
history, feeds) are given to its constructor by the composition root.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from mailsift.core.context import ScanContext
from mailsift.core.findings import Finding, Stage
from mailsift.core.protocols import Clock, Resolver, SystemClock

__all__ = ["Detector", "Services"]


@runtime_checkable
class Detector(Protocol):
    """What every detector provides.

    ``codes`` lists the finding codes it may emit (a trailing ``*`` is a prefix, for rule packs
    whose codes are data). ``versions`` names the artifacts the detector carries (rule pack hash,
    model hash, feed snapshot) so verdicts can record them.
    """

    name: str
    stage: Stage
    codes: frozenset[str]

    def run(self, ctx: ScanContext) -> Sequence[Finding]: ...

    def versions(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Services:
    """I/O handed to detectors by the composition root. ``None`` means not available (offline)."""

    resolver: Resolver | None = None
    clock: Clock = field(default_factory=SystemClock)
    extras: Mapping[str, object] = field(default_factory=dict)
