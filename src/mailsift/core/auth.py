"""Authentication results in the shape of RFC 8601, produced by ``mailsift.auth``.

Results are never bare booleans: each carries the standard's result word and the reason, so a
DNS problem is visibly ``temperror`` and never silently ``fail``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum

from mailsift.core.state import compact_state

__all__ = [
    "ArcResult",
    "AuthResults",
    "AuthStatus",
    "CompAuth",
    "DkimResult",
    "DmarcResult",
    "SpfResult",
]


class AuthStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"
    POLICY = "policy"
    SOFTPASS = "softpass"  # composite auth only


@compact_state
@dataclass(frozen=True, slots=True)
class SpfResult:
    """SPF check of one identity (``scope`` is ``mailfrom`` or ``helo``)."""

    result: AuthStatus
    scope: str
    domain: str
    identity: str = ""
    client_ip: str = ""
    reason: str = ""


@compact_state
@dataclass(frozen=True, slots=True)
class DkimResult:
    """Verification of one DKIM-Signature header (index 0 = topmost)."""

    result: AuthStatus
    domain: str
    selector: str
    index: int = 0
    algorithm: str = ""
    reason: str = ""
    identity: str = ""


@compact_state
@dataclass(frozen=True, slots=True)
class DmarcResult:
    """DMARC evaluation for the RFC5322.From domain.

    ``policy`` is the published policy that applies (p, sp or np), ``disposition`` what the
    receiver should do after pct/t (``none``, ``quarantine``, ``reject``).
    """

    result: AuthStatus
    from_domain: str
    policy: str = "none"
    disposition: str = "none"
    org_domain: str = ""
    policy_domain: str = ""
    spf_aligned: bool = False
    dkim_aligned: bool = False
    aligned_dkim_domain: str = ""
    record: str = ""
    pct: int = 100
    testing: bool = False
    reason: str = ""


@compact_state
@dataclass(frozen=True, slots=True)
class ArcResult:
    """ARC chain validation (RFC 8617). ``trusted`` when the last sealer is on the trusted list."""

    result: AuthStatus
    instances: int = 0
    last_sealer: str = ""
    trusted: bool = False
    reason: str = ""
    sealed_auth_results: str = ""
    sealed_dmarc: str = ""
    sealed_spf: str = ""
    sealed_dkim: str = ""


@compact_state
@dataclass(frozen=True, slots=True)
class CompAuth:
    """Composite authentication: is the visible From domain authenticated, and why (not)."""

    result: AuthStatus
    reason: str = ""


@compact_state
@dataclass(frozen=True, slots=True)
class AuthResults:
    """Everything authentication established about one message."""

    spf: SpfResult | None = None
    spf_helo: SpfResult | None = None
    dkim: tuple[DkimResult, ...] = ()
    dmarc: DmarcResult | None = None
    arc: ArcResult | None = None
    compauth: CompAuth | None = None
    offline: bool = False
    authserv_id: str = ""
    header: str = ""
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        from dataclasses import asdict

        def conv(value: object) -> object:
            if value is None:
                return None
            data = asdict(value)  # type: ignore[call-overload]
            return {k: (v.value if isinstance(v, Enum) else v) for k, v in data.items()}

        return {
            "offline": self.offline,
            "spf": conv(self.spf),
            "spf_helo": conv(self.spf_helo),
            "dkim": [conv(d) for d in self.dkim],
            "dmarc": conv(self.dmarc),
            "arc": conv(self.arc),
            "compauth": conv(self.compauth),
            "authserv_id": self.authserv_id,
            "header": self.header,
            "notes": list(self.notes),
        }
