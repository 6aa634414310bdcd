"""The detector contract.

A detector looks at one message (``ScanContext``) and returns findings with evidence. It never
decides what happens to the message and never writes anywhere. Settings and I/O (resolver, sender
history, feeds, the rollout registry's state) are given to its factory by the composition root
as typed ``Services`` fields; a detector opens nothing itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from mailsift.core.context import ScanContext
from mailsift.core.findings import Finding, Stage
from mailsift.core.protocols import Clock, Resolver, SystemClock
from mailsift.core.rollout import RolloutState

if TYPE_CHECKING:
    from mailsift.auth.batch import BatchResolver
    from mailsift.detectors.feeds import FeedSet
    from mailsift.history.base import SenderHistory

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
    """I/O handed to detectors by the composition root. ``None`` means not available: no
    ``resolver`` offline; no ``history`` and the signals that need one stay silent (a detector
    that is nothing without it fails to build); no ``feeds`` is no feed; no ``rollout`` means
    only what the configuration names runs (no staged rule packs or models)."""

    resolver: Resolver | None = None
    clock: Clock = field(default_factory=SystemClock)
    history: SenderHistory | None = None
    feeds: FeedSet | None = None
    rollout: RolloutState | None = None
    #: the DNS lists' own resolver (every question of a message sent at once); without it the
    #: reputation detector asks ``resolver``
    list_resolver: BatchResolver | None = None
