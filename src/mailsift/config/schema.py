"""The typed settings schema: every knob mailsift has, with its default.

Unknown keys are errors (``extra="forbid"``) so a typo fails startup instead of silently leaving a
check at its default. Sections are owned by the layer they configure; the composition root
(``mailsift.app``) hands each layer its section.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "AuthSettings",
    "DetectorSettings",
    "DnsSettings",
    "LimitSettings",
    "PolicySettings",
    "RecipientPolicy",
    "RuleSettings",
    "ScanSettings",
    "Settings",
    "Thresholds",
]

CATEGORY_NAMES = (
    "malware",
    "phish_high",
    "phish",
    "spam_high",
    "spoof",
    "impersonation_user",
    "impersonation_domain",
    "spam",
    "bulk",
    "clean",
)
ACTION_NAMES = ("deliver", "tag", "junk", "quarantine", "tempfail", "reject")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class LimitSettings(_Section):
    """Resource limits for parsing. Exceeding one yields a PARSE_* finding, never a crash."""

    max_message_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    max_mime_depth: int = Field(20, ge=1, le=1000)
    max_parts: int = Field(500, ge=1)
    max_header_bytes: int = Field(64 * 1024, ge=1024, description="longest single header value")
    max_headers: int = Field(2000, ge=10)
    max_decoded_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="all parts, decoded")
    max_text_chars: int = Field(
        512 * 1024, ge=1024, description="text (and rendered HTML) kept for content checks"
    )
    max_urls: int = Field(2000, ge=1)
    max_archive_depth: int = Field(3, ge=0, le=10)
    max_archive_members: int = Field(1000, ge=1)
    max_archive_ratio: int = Field(100, ge=1, description="uncompressed/compressed size")
    max_archive_bytes: int = Field(100 * 1024 * 1024, ge=1024)


class DetectorSettings(_Section):
    """Which detectors run, and how long each may take."""

    enabled: tuple[str, ...] = ("parse", "auth", "rules", "headers")
    disabled: tuple[str, ...] = ()
    timeout_ms: int = Field(2000, ge=1)


class ScanSettings(_Section):
    offline: bool = False
    max_workers: int = Field(2, ge=1)


class RuleSettings(_Section):
    """Rule packs: the built-in default pack plus any files or folders given here."""

    builtin: bool = True
    paths: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    weights: dict[str, float] = Field(default_factory=dict)


class Thresholds(_Section):
    """Family score at which a category fires (scores only matter inside their family)."""

    malware: float = 1.0
    phish_high: float = 12.0
    phish: float = 6.0
    spam_high: float = 15.0
    spoof: float = 1.0
    impersonation_user: float = 3.0
    impersonation_domain: float = 3.0
    spam: float = 6.0
    bulk: float = 6.0


class RecipientPolicy(_Section):
    """A named policy for some recipients; the first that matches a recipient applies."""

    name: str
    recipients: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    preset: Literal["standard", "strict"] = "standard"
    actions: dict[str, str] = Field(default_factory=dict)
    on_error: Literal["tempfail", "deliver_tagged"] | None = None

    @field_validator("actions")
    @classmethod
    def _valid_actions(cls, value: dict[str, str]) -> dict[str, str]:
        for category, action in value.items():
            if category not in CATEGORY_NAMES:
                raise ValueError(f"unknown category {category!r}")
            if action not in ACTION_NAMES:
                raise ValueError(f"unknown action {action!r} for {category}")
        return value


class PolicySettings(_Section):
    """Categories -> actions. ``monitor`` turns every action into tagging."""

    preset: Literal["standard", "strict"] = "standard"
    monitor: bool = False
    on_error: Literal["tempfail", "deliver_tagged"] = "deliver_tagged"
    thresholds: Thresholds = Field(default_factory=Thresholds)
    strict_thresholds: Thresholds = Field(
        default_factory=lambda: Thresholds(
            phish_high=9.0, phish=4.0, spam_high=10.0, spam=4.0, bulk=4.0,
            impersonation_user=2.0, impersonation_domain=2.0,
        )
    )
    actions: dict[str, str] = Field(default_factory=dict)
    policies: tuple[RecipientPolicy, ...] = ()
    dmarc_enforcement: Literal["honour", "junk", "ignore"] = "honour"

    @field_validator("actions")
    @classmethod
    def _valid_actions(cls, value: dict[str, str]) -> dict[str, str]:
        return RecipientPolicy._valid_actions(value)


class DnsSettings(_Section):
    """The resolver used by every DNS-based check."""

    nameservers: tuple[str, ...] = ()
    port: int = Field(53, ge=1, le=65535)
    timeout: float = Field(2.0, gt=0)
    lifetime: float = Field(4.0, gt=0)
    cache_size: int = Field(10000, ge=0)


class AuthSettings(_Section):
    """Email authentication (SPF, DKIM, DMARC, ARC)."""

    authserv_id: str = "mailsift.local"
    trusted_arc_sealers: tuple[str, ...] = ()
    trusted_relays: tuple[str, ...] = ()
    spoof_allow: tuple[str, ...] = ()


class Settings(_Section):
    """All settings. See ``mailsift config dump`` for the effective values."""

    limits: LimitSettings = Field(default_factory=LimitSettings)
    detectors: DetectorSettings = Field(default_factory=DetectorSettings)
    scan: ScanSettings = Field(default_factory=ScanSettings)
    rules: RuleSettings = Field(default_factory=RuleSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    dns: DnsSettings = Field(default_factory=DnsSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
