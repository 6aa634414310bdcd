"""Settings of the content and reputation detectors (links, attachments, impersonation, bulk,
sender history, local threat feeds, ClamAV).

One class per detector; each is a field of ``Settings``. Every detector also takes ``weights``
(finding code -> weight) so an operator can retune a code without touching code; an unknown code
there fails startup in the detector's ``build`` (a typo must not silently keep the old weight).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "AttachmentSettings",
    "BulkSettings",
    "ClamavSettings",
    "FeedSettings",
    "HistorySettings",
    "ImpersonationSettings",
    "LinkSettings",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _weights() -> Any:
    return Field(default_factory=dict, description="code -> weight, overrides the declared default")


def _lower_domains(value: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for entry in value:
        entry = entry.strip().strip(".").lower()
        if not entry or " " in entry or "@" in entry:
            raise ValueError(f"not a domain name: {entry!r}")
        out.append(entry)
    return tuple(out)


class LinkSettings(_Section):
    """The links detector. ``brands`` are domains of brands often impersonated (their first label
    is matched in hosts); the organisation's own and partner domains come from
    ``[impersonation]``."""

    brands: tuple[str, ...] = Field((
        "paypal.com", "microsoft.com", "office.com", "apple.com", "amazon.com", "google.com",
        "netflix.com", "docusign.com", "dropbox.com", "wellsfargo.com", "chase.com",
        "bankofamerica.com", "dhl.com", "fedex.com", "ups.com", "usps.com", "linkedin.com",
        "facebook.com", "instagram.com", "adobe.com", "coinbase.com", "binance.com",
        "americanexpress.com", "outlook.com", "icloud.com", "ebay.com", "steampowered.com",
    ), description="often-impersonated brand domains, matched by label and skeleton")
    shorteners: tuple[str, ...] = Field((
        "bit.ly", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "buff.ly", "rebrand.ly",
        "cutt.ly", "shorturl.at", "rb.gy", "t.ly", "tiny.cc", "s.id", "v.gd", "bl.ink",
        "lnkd.in", "qrco.de", "urlz.fr", "shorte.st", "adf.ly",
    ), description="URL shortener domains (suffix match)")
    max_edit_distance: int = Field(1, ge=0, le=3, description="lookalike: label edit distance")
    min_label_length: int = Field(5, ge=3, description="shorter labels are not lookalike-checked")
    new_domain_min_learned: int = Field(
        1000, ge=0, description="URL_NEW_DOMAIN only once history has learned this many messages"
    )
    max_urls: int = Field(200, ge=1, description="links judged per message")
    weights: dict[str, float] = _weights()

    @field_validator("brands", "shorteners")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _lower_domains(value)


class AttachmentSettings(_Section):
    """The attachments detector."""

    blocked_extensions: tuple[str, ...] = Field((
        "exe", "scr", "com", "pif", "bat", "cmd", "cpl", "msi", "msp", "msc", "jar", "js", "jse",
        "vbs", "vbe", "wsf", "wsh", "wsc", "hta", "ps1", "psm1", "lnk", "url", "reg", "inf",
        "scf", "application", "gadget", "appx", "appxbundle", "msix", "iso", "img", "vhd",
        "vhdx", "dll", "sys", "chm", "xll", "one", "library-ms", "settingcontent-ms", "iqy",
        "slk", "ace", "apk",
    ), description="executables, scripts, shortcuts, disk images: ATT_BLOCKED_TYPE")
    html_extensions: tuple[str, ...] = Field(
        ("htm", "html", "shtml", "xhtml", "svg", "mht", "mhtml"),
        description="files inspected as HTML/SVG (script, smuggling, forms, redirects)")
    macro_extensions: tuple[str, ...] = Field((
        "doc", "dot", "docm", "dotm", "xls", "xlt", "xlsm", "xltm", "xlsb", "xla", "xlam",
        "ppt", "pps", "pptm", "ppsm", "potm", "rtf",
    ), description="Office files inspected for macros (oletools)")
    max_scan_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="bytes of one file inspected (PDF/HTML/Office)"
    )
    clamav: bool = Field(False, description="send attachments to clamd ([clamav] section)")
    weights: dict[str, float] = _weights()

    @field_validator("blocked_extensions", "html_extensions", "macro_extensions")
    @classmethod
    def _exts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(e.strip().lstrip(".").lower() for e in value if e.strip())


class ClamavSettings(_Section):
    """Where clamd listens: ``socket`` (a unix socket path) or ``host``/``port`` (TCP)."""

    socket: str = ""
    host: str = ""
    port: int = Field(3310, ge=1, le=65535)
    timeout: float = Field(10.0, gt=0, description="seconds per scan")
    chunk_bytes: int = Field(64 * 1024, ge=1024, le=1024 * 1024)
    max_stream_bytes: int = Field(
        25 * 1024 * 1024, ge=1024, description="must not exceed clamd's StreamMaxLength"
    )

    @property
    def configured(self) -> bool:
        return bool(self.socket or self.host)


class ImpersonationSettings(_Section):
    """Who may be impersonated. ``protected_users`` maps a person's display name to the addresses
    they really use (``"Jane Doe" = ["jane@example.org"]``); ``own_domains`` are the
    organisation's domains, ``partner_domains`` those of suppliers and customers."""

    protected_users: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description='display name -> their addresses: '
        '"Jane Doe" = ["jane@example.org"] (first and last name)')
    own_domains: tuple[str, ...] = Field((), description="the organisation's domains")
    partner_domains: tuple[str, ...] = Field((), description="suppliers' and customers' domains")
    brand_display_names: bool = Field(
        True, description="flag display names naming a protected domain or brand from elsewhere"
    )
    weights: dict[str, float] = _weights()

    @field_validator("own_domains", "partner_domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _lower_domains(value)

    @field_validator("protected_users")
    @classmethod
    def _users(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for name, addrs in value.items():
            if len(name.split()) < 2:
                # One-word names ("Sam") match far too many legitimate senders.
                raise ValueError(f"protected user {name!r}: give first and last name")
            for addr in addrs:
                if "@" not in addr:
                    raise ValueError(f"protected user {name!r}: bad address {addr!r}")
            out[name] = tuple(a.strip().lower() for a in addrs)
        return out


class BulkSettings(_Section):
    """The bulk-mail detector. ``esp_hosts`` add link/Received hosts of mail service providers to
    the built-in list."""

    esp_hosts: tuple[str, ...] = Field(
        (), description="link/Received hosts of mail service providers, added to the built-in "
        "list")
    volume_recipients: int = Field(
        20, ge=1, description="a sender writing to this many distinct recipients counts as volume"
    )
    weights: dict[str, float] = _weights()

    @field_validator("esp_hosts")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _lower_domains(value)


class HistorySettings(_Section):
    """Sender history: who writes to whom. ``memory`` forgets on restart; ``sqlite`` persists in
    ``path``; ``database`` lives in the SQL database at ``url`` (shared by every gateway node:
    ``mailsift serve`` picks it by itself, with the store's database, when the store is
    PostgreSQL). Bounded by ``max_entries`` rows per table (least recently seen dropped first)."""

    backend: Literal["memory", "sqlite", "database"] = Field(
        "memory", description="memory forgets on restart; a single node uses sqlite, several "
        "nodes on PostgreSQL share the store's database")
    path: str = Field("", description="the SQLite file (backend = sqlite)")
    url: str = Field("", description="database backend: SQLAlchemy URL (the store's, usually)")
    db_schema: str = Field("", description="database backend: PostgreSQL schema")
    max_entries: int = Field(200_000, ge=100, description="rows per table; least recently "
                             "seen dropped first")
    min_learned: int = Field(
        1000, ge=0, description="new-sender signals only once this many messages were learned"
    )
    established_messages: int = Field(
        5, ge=1, description="a domain with this many delivered messages is established"
    )
    weights: dict[str, float] = _weights()

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return value.strip()


class FeedSettings(_Section):
    """Local threat feeds, read from files at startup (never fetched during a scan).

    ``url_lists``: OpenPhish-style text (one URL a line) or PhishTank CSV/JSON; ``domain_lists``:
    one domain a line (hosts-file lines accepted); ``hash_lists``: SHA-256 a line (``sha256sum``
    output accepted). A name for the feed is the file's stem.
    """

    url_lists: tuple[str, ...] = ()
    domain_lists: tuple[str, ...] = ()
    hash_lists: tuple[str, ...] = ()
    max_entries: int = Field(2_000_000, ge=1, description="per feed file")
