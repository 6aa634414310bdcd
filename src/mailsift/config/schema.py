"""The typed settings schema: every knob mailsift has, with its default.

Unknown keys are errors (``extra="forbid"``) so a typo fails startup instead of silently leaving a
check at its default. Sections are owned by the layer they configure; the composition root
(``mailsift.app``) and the pipeline builder (``mailsift.pipeline.build``) hand each layer its
section.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from mailsift.config.detectors import (
    AttachmentSettings,
    BulkSettings,
    ClamavSettings,
    FeedSettings,
    HistorySettings,
    ImpersonationSettings,
    LinkSettings,
)
from mailsift.config.dmarc import DmarcReportSettings
from mailsift.config.enduser import EndUserSettings
from mailsift.config.fields import Nameservers
from mailsift.config.gateway import (
    GatewaySettings,
    HttpSettings,
    LogSettings,
    MilterSettings,
    SmtpSettings,
)
from mailsift.config.mailflow import DirectionSettings, MailflowSettings
from mailsift.config.ml import MlSettings
from mailsift.config.reputation import (
    GreylistSettings,
    RateLimitSettings,
    ReputationSettings,
)
from mailsift.config.rollout import RolloutSettings
from mailsift.config.store import StoreSettings
from mailsift.core.verdict import DETECTED, Action, Category

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

# One source of names: the enums policy decides with (a category added there is configurable
# here at once; a hand-kept copy of the list once refused ``phish_suspect``).
CATEGORY_NAMES: tuple[str, ...] = tuple(c.value for c in Category)
ACTION_NAMES: tuple[str, ...] = tuple(a.value for a in Action)


def _installed_detectors() -> tuple[str, ...]:
    """Every installed detector that declares itself on by default, in run order."""
    from mailsift.core.catalog import catalog

    return catalog().default_enabled()


_M = TypeVar("_M", bound=BaseModel)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class LimitSettings(_Section):
    """Resource limits for parsing. Exceeding one yields a PARSE_* finding, never a crash."""

    max_message_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    max_mime_depth: int = Field(20, ge=1, le=1000)
    max_parts: int = Field(500, ge=1)
    max_header_bytes: int = Field(128 * 1024, ge=1024, description="longest single header value")
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

    enabled: tuple[str, ...] = Field(
        default_factory=_installed_detectors,
        description="default: every installed detector declared on by default, in stage order")
    disabled: tuple[str, ...] = ()
    timeout_ms: int = Field(2000, ge=1)
    timeouts_ms: dict[str, int] = Field(
        default_factory=lambda: {"auth": 8000},
        description="per-detector budgets; auth waits on DNS (2 s per query by default)")


class ScanSettings(_Section):
    offline: bool = False
    max_workers: int = Field(1, ge=1, description="default of mailsift scan --workers")


class RuleSettings(_Section):
    """Rule packs: the built-in default pack plus any files or folders given here.

    ``disabled`` rule ids never run (metas reading them see "no hit"); ``weights`` override a
    rule's weight (scores.d style). Unknown ids in either fail startup.
    """

    builtin: bool = Field(True, description="load the default pack shipped with mailsift")
    paths: tuple[str, ...] = Field((), description="rule pack files or folders")
    disabled: tuple[str, ...] = Field((), description="rule ids that never run")
    weights: dict[str, float] = Field(default_factory=dict,
                                      description="rule id -> weight (scores.d style)")
    max_raw_bytes: int = Field(
        256 * 1024, ge=1024, description="how much of the raw message `raw` rules search"
    )
    max_body_chars: int = Field(
        128 * 1024, ge=1024,
        description="how much of the text, rendered HTML and HTML source body rules search",
    )


class Thresholds(_Section):
    """Family score at which a category fires (scores only matter inside their family)."""

    malware: float = 1.0
    phish_high: float = 12.0
    phish: float = 6.0
    spam_high: float = 15.0
    spoof: float = 1.0
    impersonation_user: float = 3.0
    impersonation_domain: float = 3.0
    # Phish evidence below the quarantine threshold but beyond what any one link trick or
    # wording rule says on its own (at most 3): suspected phishing, junked (Standard).
    phish_suspect: float = 4.0
    spam: float = 6.0
    bulk: float = 6.0

    def of(self, category: Category) -> float:
        """The threshold of ``category`` (every category but CLEAN has one)."""
        return float(getattr(self, category.value))


# Thresholds are keyed by Category: a field per detected category, no more, no less (checked
# when the module loads, so a category added to the enum cannot lack a threshold).
if set(Thresholds.model_fields) != {c.value for c in DETECTED}:  # pragma: no cover - a build bug
    raise RuntimeError("Thresholds fields differ from the detected categories: "
                       f"{sorted(set(Thresholds.model_fields) ^ {c.value for c in DETECTED})}")


def _check_actions(value: Any) -> Any:
    """Name the unknown category or action (pydantic's enum message lists every value but not
    which key was wrong in a way an operator reads at a glance)."""
    if isinstance(value, Mapping):
        for category, action in value.items():
            if str(category) not in CATEGORY_NAMES:
                raise ValueError(f"unknown category {category!r} (categories: "
                                 f"{', '.join(CATEGORY_NAMES)})")
            if str(action) not in ACTION_NAMES:
                raise ValueError(f"unknown action {action!r} for {category} (actions: "
                                 f"{', '.join(ACTION_NAMES)})")
    return value


class RecipientPolicy(_Section):
    """A named policy for some recipients; the first that matches a recipient applies."""

    name: str
    recipients: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    preset: Literal["standard", "strict"] = "standard"
    actions: dict[Category, Action] = Field(default_factory=dict)
    on_error: Literal["tempfail", "deliver_tagged"] | None = None

    @field_validator("actions", mode="before")
    @classmethod
    def _known_names(cls, value: Any) -> Any:
        return _check_actions(value)


class AdvancedDelivery(_Section):
    """Mail that must arrive unfiltered: SecOps mailboxes and approved phishing simulations.

    Matches are exact (no wildcards) and every bypass is recorded in the verdict.
    """

    secops_mailboxes: tuple[str, ...] = ()
    simulation_domains: tuple[str, ...] = Field(
        (), description="From/envelope domains of the approved phishing-simulation vendor"
    )
    simulation_ips: tuple[str, ...] = Field((), description="its sending IPs or networks")


DEFAULT_GUARDRAILS = {
    "PARSE_DEPTH_LIMIT": "reject",
    "PARSE_PARTS_LIMIT": "reject",
    "PARSE_HEADER_TOO_LONG": "reject",
    "PARSE_HEADER_LIMIT": "reject",
    "PARSE_SIZE_LIMIT": "reject",
}


class PolicySettings(_Section):
    """Categories -> actions. ``monitor`` turns every action into tagging."""

    preset: Literal["standard", "strict"] = "standard"
    monitor: bool = False
    on_error: Literal["tempfail", "deliver_tagged"] = "deliver_tagged"
    thresholds: Thresholds = Field(default_factory=Thresholds)
    strict_thresholds: Thresholds = Field(
        default_factory=lambda: Thresholds(
            phish_high=9.0, phish=4.0, spam_high=10.0, spam=4.0, bulk=4.0,
            impersonation_user=2.0, impersonation_domain=2.0, phish_suspect=3.0,
        )
    )
    actions: dict[Category, Action] = Field(default_factory=dict)
    policies: tuple[RecipientPolicy, ...] = ()
    dmarc_enforcement: Literal["honour", "junk", "ignore"] = "honour"
    block_action: Literal["quarantine", "reject"] = Field(
        "quarantine", description="what an admin block does (precedence step 3): blocked mail "
        "is never delivered, not even to junk")
    guardrails: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_GUARDRAILS))
    advanced_delivery: AdvancedDelivery = Field(default_factory=AdvancedDelivery)

    @field_validator("actions", mode="before")
    @classmethod
    def _known_names(cls, value: Any) -> Any:
        return _check_actions(value)

    @field_validator("guardrails")
    @classmethod
    def _valid_guardrails(cls, value: dict[str, str]) -> dict[str, str]:
        for code, action in value.items():
            if action not in ("reject", "tempfail", "quarantine"):
                raise ValueError(f"guardrail {code}: action must be reject, tempfail or quarantine")
        return value


class DnsSettings(_Section):
    """The resolver used by every DNS-based check (``mailsift scan --dns HOST:PORT`` overrides).

    No ``nameservers`` means the system configuration (``/etc/resolv.conf``).
    """

    nameservers: Nameservers = ()
    port: int = Field(53, ge=1, le=65535)
    timeout: float = Field(2.0, gt=0, description="seconds per server try")
    lifetime: float = Field(4.0, gt=0, description="seconds per question, all tries")
    cache_size: int = Field(10000, ge=0, description="answers kept (bounded, honours TTLs)")
    budget: float = Field(
        0.0, ge=0, description="seconds of DNS for one message, all its checks together; then "
        "they end as temperror and keep what they know. 0 = three quarters of the auth "
        "detector's budget ([detectors] timeouts_ms.auth); must stay below it")


class AuthSettings(_Section):
    """Email authentication (SPF, DKIM, DMARC, ARC, composite auth).

    ``trusted_relays``: our own MTAs, as IPs/networks (``192.0.2.0/24``) or host names
    (``mx1.example.org``; a leading dot matches subdomains); their Received headers supply the
    client IP, HELO and MAIL FROM when the envelope lacks them. ``spoof_allow``: pairs
    ``from-domain=sender`` where sender is a domain (MAIL FROM, HELO or a passing DKIM d=, by
    organizational domain), an IP/network of the client, or ``*``.
    """

    authserv_id: str = Field("mailsift.local",
                             description="our id in Authentication-Results (one token)")
    trusted_arc_sealers: tuple[str, ...] = Field(
        (), description="ARC sealer domains whose vouching rescues a DMARC failure (subdomains "
        "match)")
    trusted_relays: tuple[str, ...] = Field(
        (), description="our own MTAs: IPs/networks or host names (.example.org: subdomains)")
    spoof_allow: tuple[str, ...] = Field(
        (), description="from-domain=sender pairs; sender: a domain authenticated by SPF/DKIM, "
        "a client network, or *")
    dmarc_discovery: Literal["treewalk", "psl"] = Field(
        "treewalk", description="DMARC policy discovery: RFC 9989 tree walk or the PSL")
    check_helo: bool = Field(True, description="SPF-check the HELO name (AUTH_HELO_FAIL)")
    min_key_bits: int = Field(1024, ge=512, le=8192,
                              description="shorter DKIM RSA keys do not verify")
    strip_forged_results: bool = Field(
        True, description="the gateway removes incoming Authentication-Results claiming our id")
    weights: dict[str, float] = Field(
        default_factory=dict, description="AUTH_* code -> weight, overrides the detector default"
    )

    @field_validator("authserv_id")
    @classmethod
    def _authserv_id(cls, value: str) -> str:
        if not value or any(c in value for c in " ;()\"\t\r\n"):
            raise ValueError(f"authserv_id must be a single token: {value!r}")
        return value.lower()

    @field_validator("trusted_relays")
    @classmethod
    def _relays(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for entry in value:
            if "/" in entry or ":" in entry or entry.replace(".", "").isdigit():
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError as exc:
                    raise ValueError(f"bad trusted relay network {entry!r}") from exc
            elif not entry.strip(".") or " " in entry:
                raise ValueError(f"bad trusted relay host {entry!r}")
        return value

    @field_validator("spoof_allow")
    @classmethod
    def _spoof_pairs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for entry in value:
            domain, eq, sender = entry.partition("=")
            if not eq or not domain.strip() or not sender.strip() or " " in entry.strip():
                raise ValueError(f"spoof_allow entry must be 'from-domain=sender': {entry!r}")
            sender = sender.strip()
            if sender != "*" and ("/" in sender or ":" in sender):
                try:
                    ipaddress.ip_network(sender, strict=False)
                except ValueError as exc:
                    raise ValueError(f"bad network in spoof_allow {entry!r}") from exc
        return tuple(e.strip().lower() for e in value)


class Settings(_Section):
    """All settings. See ``mailsift config dump`` for the effective values."""

    limits: LimitSettings = Field(default_factory=LimitSettings)
    detectors: DetectorSettings = Field(default_factory=DetectorSettings)
    scan: ScanSettings = Field(default_factory=ScanSettings)
    rules: RuleSettings = Field(default_factory=RuleSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    dns: DnsSettings = Field(default_factory=DnsSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    links: LinkSettings = Field(default_factory=LinkSettings)
    attachments: AttachmentSettings = Field(default_factory=AttachmentSettings)
    impersonation: ImpersonationSettings = Field(default_factory=ImpersonationSettings)
    bulk: BulkSettings = Field(default_factory=BulkSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    feeds: FeedSettings = Field(default_factory=FeedSettings)
    clamav: ClamavSettings = Field(default_factory=ClamavSettings)
    reputation: ReputationSettings = Field(default_factory=ReputationSettings)
    ratelimit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    greylist: GreylistSettings = Field(default_factory=GreylistSettings)
    ml: MlSettings = Field(default_factory=MlSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    milter: MilterSettings = Field(default_factory=MilterSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    dmarc_reports: DmarcReportSettings = Field(default_factory=DmarcReportSettings)
    enduser: EndUserSettings = Field(default_factory=EndUserSettings)
    direction: DirectionSettings = Field(default_factory=DirectionSettings)
    mailflow: MailflowSettings = Field(default_factory=MailflowSettings)

    # ``[<name>]`` sections of installed detectors that mailsift does not define itself,
    # validated by the model the detector declares (``DetectorSpec.settings``).
    _detector_sections: dict[str, BaseModel] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _detector_owned_sections(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Sections named after an installed detector go to its settings model; any other
        unknown section is refused, naming the sections and detectors there are."""
        if not isinstance(data, dict) or set(data) <= set(cls.model_fields):
            return handler(data)
        from mailsift.core.catalog import catalog

        found = catalog()
        own: dict[str, Any] = {}
        for key in [k for k in data if k not in cls.model_fields]:
            spec = found.specs.get(key)
            if spec is None or spec.settings is None:
                have = sorted(n for n, s in found.specs.items()
                              if s.settings is not None and n not in cls.model_fields)
                raise ValueError(
                    f"unknown section [{key}]: neither a mailsift section nor the section of an "
                    "installed detector" + (f" (detector sections: {', '.join(have)})"
                                            if have else ""))
            own[key] = data[key]
        settings = handler({k: v for k, v in data.items() if k not in own})
        sections = {}
        for key, value in own.items():
            model = found.specs[key].settings
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise ValueError(f"[{key}]: detector {key!r} declares settings that are not a "
                                 "pydantic model")
            sections[key] = value if isinstance(value, model) else model.model_validate(value)
        settings._detector_sections = sections
        return settings

    @model_serializer(mode="wrap")
    def _dump_detector_sections(self, handler: SerializerFunctionWrapHandler) -> Any:
        out = handler(self)
        if isinstance(out, dict):
            for name, section in self._detector_sections.items():
                out[name] = section.model_dump(mode="json")
        return out

    def detector_section(self, name: str, model: type[_M]) -> _M:
        """The ``[name]`` section of a detector, as ``model``: a mailsift section, the one the
        configuration gave, or ``model``'s defaults when it gave none."""
        value = getattr(self, name) if name in type(self).model_fields \
            else self._detector_sections.get(name)
        if value is None:
            return model()
        if not isinstance(value, model):
            raise TypeError(f"[{name}] is a {type(value).__name__}, not a {model.__name__}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _release_follows_delivery(cls, data: Any) -> Any:
        """Released mail takes the delivery path unless ``[store] release_*`` says otherwise:
        a release had gone to 127.0.0.1:10026 whatever the next hop was (nowhere, often)."""
        if not isinstance(data, dict):
            return data
        store, gateway = data.get("store"), data.get("gateway")
        if isinstance(store, StoreSettings):
            store = store.model_dump(exclude_unset=True)
        if store is not None and not isinstance(store, dict):
            return data
        store = dict(store or {})
        hop = gateway if isinstance(gateway, dict) else (
            gateway.model_dump() if isinstance(gateway, GatewaySettings) else {})
        if not store.get("release_host"):
            store["release_host"] = hop.get("next_hop_host", GatewaySettings().next_hop_host)
        if not store.get("release_port"):
            store["release_port"] = hop.get("next_hop_port", GatewaySettings().next_hop_port)
        return {**data, "store": store}

    def dns_budget(self) -> float:
        """Seconds of DNS per message: ``[dns] budget``, or 3/4 of the auth detector's."""
        return self.dns.budget or 0.75 * self.auth_budget()

    def auth_budget(self) -> float:
        d = self.detectors
        return d.timeouts_ms.get("auth", d.timeout_ms) / 1000.0

    @model_validator(mode="after")
    def _dns_within_auth(self) -> Settings:
        if self.dns.budget and self.dns.budget >= self.auth_budget():
            raise ValueError(f"[dns] budget ({self.dns.budget:g} s) must be below the auth "
                             f"detector's budget ({self.auth_budget():g} s), or a DNS outage "
                             "loses every authentication result")
        return self
