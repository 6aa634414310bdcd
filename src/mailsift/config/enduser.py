"""Settings of what recipients see and may do with their quarantined mail.

``[quarantine_access]``: per detection category, which quarantine policy applies (what the
recipient may do with a held copy and whether they are told about it). ``[digest]``: the
periodic quarantine notification mails. Both are read by ``services.quarantine_policy`` and
``services.digests``; see docs/end-user-quarantine.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mailsift.config.fields import Networks
from mailsift.core.verdict import Category

__all__ = [
    "RECIPIENT_ACTIONS",
    "AccessPolicy",
    "DigestSettings",
    "EndUserSettings",
    "QuarantineAccessSettings",
]

#: What a recipient can do with one of its quarantined copies.
RECIPIENT_ACTIONS = ("see", "preview", "download", "release", "request_release", "report")
_CATEGORIES = tuple(c.value for c in Category if c is not Category.CLEAN)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class AccessPolicy(_Section):
    """One quarantine policy: the recipient's permissions and whether they are notified."""

    see: bool = True
    preview: bool = False
    download: bool = False
    release: bool = False
    request_release: bool = False
    report: bool = True
    notify: bool = False

    @model_validator(mode="after")
    def _needs_see(self) -> AccessPolicy:
        acting = (self.preview, self.download, self.release, self.request_release, self.notify)
        if not self.see and any(acting):
            raise ValueError("a policy that hides messages (see = false) cannot grant preview, "
                             "download, release, request_release or notify")
        return self


#: The built-in policies, after Microsoft Defender's AdminOnlyAccessPolicy and
#: DefaultFullAccessPolicy; ``limited`` sits between (look and ask, but not release).
BUILTIN_POLICIES: dict[str, AccessPolicy] = {
    "admin_only": AccessPolicy(see=True, request_release=True, report=True),
    "limited": AccessPolicy(see=True, preview=True, download=True, request_release=True,
                            report=True, notify=True),
    "full_access": AccessPolicy(see=True, preview=True, download=True, release=True,
                                request_release=True, report=True, notify=True),
    "no_access": AccessPolicy(see=False, report=False),
}

DEFAULT_CATEGORY_POLICIES: dict[str, str] = {
    "malware": "admin_only",
    "phish_high": "admin_only",
    "phish": "limited",
    "impersonation_user": "limited",
    "impersonation_domain": "limited",
    "spoof": "limited",
    "phish_suspect": "limited",
    "spam_high": "full_access",
    "spam": "full_access",
    "bulk": "full_access",
}


class QuarantineAccessSettings(_Section):
    """``[quarantine_access]``: category -> policy name, and any policies of your own."""

    categories: dict[str, str] = Field(default_factory=dict,
                                       description="category -> policy, over the defaults")
    policies: dict[str, AccessPolicy] = Field(default_factory=dict,
                                              description="your own policies, by name")

    @model_validator(mode="after")
    def _known(self) -> QuarantineAccessSettings:
        names = {**BUILTIN_POLICIES, **self.policies}
        for cat, pol in self.categories.items():
            if cat not in _CATEGORIES:
                raise ValueError(f"[quarantine_access] unknown category {cat!r} "
                                 f"(one of {', '.join(_CATEGORIES)})")
            if pol not in names:
                raise ValueError(f"[quarantine_access] {cat} = {pol!r}: no such policy "
                                 f"(one of {', '.join(sorted(names))})")
        return self

    def policy_name(self, category: str) -> str:
        return self.categories.get(category) or DEFAULT_CATEGORY_POLICIES.get(
            category, "admin_only")

    def policy(self, category: str) -> AccessPolicy:
        name = self.policy_name(category)
        return self.policies.get(name) or BUILTIN_POLICIES[name]


class DigestSettings(_Section):
    """``[digest]``: quarantine notification mails to recipients."""

    enabled: bool = Field(False, description="send digests from mailsift serve")
    period_hours: float = Field(24.0, gt=0, le=24 * 31, description="one digest per period")
    check_seconds: float = Field(300.0, gt=0, description="how often serve looks for due ones")
    base_url: str = Field("http://127.0.0.1:8025",
                          description="how recipients reach the console (links in the mail)")
    from_address: str = Field("quarantine@localhost", description="From: of the digests")
    from_name: str = "mailsift quarantine"
    categories: tuple[str, ...] = Field(
        (), description="categories listed; empty = those whose policy notifies")
    include_malware: bool = Field(False, description="list malware even when named above")
    link_ttl_hours: float = Field(72.0, gt=0, le=24 * 31, description="action links expire")
    max_items: int = Field(200, ge=1, le=5000, description="messages listed per digest")
    language: str = Field("en", description="default template language")
    template_dir: str = Field("", description="your own digest.txt/digest.html/<lang>.toml, "
                              "over the built-in ones")
    languages: dict[str, str] = Field(default_factory=dict,
                                      description="recipient or @domain -> language")
    opt_out: tuple[str, ...] = Field((), description="addresses or @domains never sent one")
    key_file: str = Field("", description="signs action links; empty = <data_dir>/digest.key")
    lease_seconds: float = Field(600.0, gt=0, description="a claimed digest not confirmed "
                                 "sent by then is not sent again (its messages roll over)")

    @field_validator("categories")
    @classmethod
    def _cats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in value if c not in _CATEGORIES]
        if bad:
            raise ValueError(f"[digest] unknown categories: {', '.join(bad)}")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("[digest] base_url must start with http:// or https://")
        return value.rstrip("/")


class SelfServiceSettings(_Section):
    """``[self_service]``: recipients sign in with a link mailed to them."""

    magic_link: bool = Field(True, description="offer 'mail me a sign-in link'")
    link_ttl_minutes: float = Field(15.0, gt=0, le=24 * 60)
    per_address_per_hour: int = Field(3, ge=1, description="links mailed per address")
    per_client_per_hour: int = Field(20, ge=1, description="link requests per client address")
    domains: tuple[str, ...] = Field((), description="mail domains whose users may ask; "
                                     "empty = any domain mailsift has quarantined mail for")
    request_digest_to: tuple[str, ...] = Field((), description="admins told of pending "
                                               "release requests (batched)")
    approval_mail: Literal["on", "off"] = "on"


class ReportMailboxSettings(_Section):
    """``[enduser.report_mailbox]``: addresses that take user reports by mail (the report
    buttons of Outlook and Thunderbird: ARF, or the message forwarded as an attachment)."""

    addresses: dict[str, str] = Field(
        default_factory=dict, description="address -> label: phish, spam or ham (not junk)")
    internal_networks: Networks = Field(
        (), description="client networks trusted as internal: reports from there need no "
        "DMARC pass (your own mail servers, VPN)")

    @field_validator("addresses")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        out = {}
        for address, label in value.items():
            norm = label.strip().lower().replace("-", "_")
            norm = "ham" if norm in ("not_junk", "notjunk") else norm
            if norm not in ("phish", "spam", "ham"):
                raise ValueError(f"[enduser.report_mailbox] {address}: label {label!r} is not "
                                 "phish, spam or ham")
            if "@" not in address:
                raise ValueError(f"[enduser.report_mailbox] not an address: {address!r}")
            out[address.strip().lower()] = norm
        return out


class EndUserSettings(_Section):
    report_mailbox: ReportMailboxSettings = Field(default_factory=ReportMailboxSettings)
    access: QuarantineAccessSettings = Field(default_factory=QuarantineAccessSettings)
    digest: DigestSettings = Field(default_factory=DigestSettings)
    self_service: SelfServiceSettings = Field(default_factory=SelfServiceSettings)
