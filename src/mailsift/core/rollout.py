"""What is deployed, in which rollout state: the registry's answer, as the pipeline sees it.

A ``Deployment`` is one version of one artifact (a rule pack, a model) with its state. The
pipeline runs every non-retired deployment: active ones act, shadow ones are recorded and never
act, canary ones act only for recipients in their scope. ``rule_states`` override single rules
inside packs (the circuit breaker demotes a misfiring rule without touching its pack).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from mailsift.core.errors import InputError
from mailsift.core.findings import ArtifactState

__all__ = ["CanaryScope", "Deployment", "RolloutState", "in_scope"]


@dataclass(frozen=True, slots=True)
class CanaryScope:
    """Recipients (addresses), domains (``example.net`` and subdomains) and/or a percentage of
    recipients (stable per recipient: a hash decides) in which a canary acts."""

    recipients: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    percent: float = 0.0

    def __post_init__(self) -> None:
        # ``not 0 <= p <= 100`` is also true for NaN
        if not 0.0 <= self.percent <= 100.0:
            raise InputError(f"percent must be between 0 and 100, not {self.percent:g}")
        if any(not r.strip() or "@" not in r for r in self.recipients):
            raise InputError(f"a canary recipient must be an address: {self.recipients}")
        if any(not d.strip(" .@") for d in self.domains):
            raise InputError("a canary domain must not be empty")

    @property
    def empty(self) -> bool:
        return not (self.recipients or self.domains or self.percent)

    def members(self) -> tuple[str, ...]:
        """The compact form policy reads: addresses, ``@domain`` and ``%N``."""
        out = [r.lower() for r in self.recipients] + [f"@{d.lower()}" for d in self.domains]
        if self.percent:
            out.append(f"%{self.percent:g}")
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Deployment:
    kind: str  # "rules" | "model"
    name: str  # pack or model name; the artifact is f"{kind}:{name}"
    version: str
    state: ArtifactState
    path: str = ""  # local copy ("" = built in)
    scope: CanaryScope | None = None
    since: float = 0.0

    @property
    def artifact(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True)
class RolloutState:
    deployments: tuple[Deployment, ...] = ()
    rule_states: Mapping[str, ArtifactState] = field(
        default_factory=lambda: MappingProxyType({}))
    version: str = "none"

    def of(self, kind: str, name: str) -> tuple[Deployment, ...]:
        return tuple(d for d in self.deployments if d.kind == kind and d.name == name)

    def canary_scopes(self) -> dict[str, tuple[str, ...]]:
        return {d.artifact: d.scope.members() for d in self.deployments
                if d.state is ArtifactState.CANARY and d.scope is not None}


def in_scope(members: Sequence[str], recipient: str | None) -> bool:
    """Is ``recipient`` in a canary scope's members (``CanaryScope.members``): an address,
    ``@domain`` (and its subdomains) or ``%N`` (a stable N% of recipients, chosen by hashing
    the address so a recipient stays in or out)?"""
    if not recipient:
        return False
    rcpt = recipient.lower()
    domain = rcpt.rsplit("@", 1)[-1]
    for member in members:
        if member.startswith("%"):
            bucket = int(hashlib.sha256(rcpt.encode()).hexdigest()[:8], 16) % 10000
            if bucket < float(member[1:]) * 100:
                return True
        elif member.startswith("@"):
            if domain == member[1:] or domain.endswith("." + member[1:]):
                return True
        elif member == rcpt:
            return True
    return False
