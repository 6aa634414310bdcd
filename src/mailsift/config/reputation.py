"""Settings of DNS reputation lists (``[reputation]``) and of connection-level defence
(``[ratelimit]``, ``[greylist]``).

Reputation lists are off until configured: public DNSBLs forbid queries through public
resolvers, so nothing is ever asked unless an operator names a list. A list is::

    [[reputation.ip_lists]]
    name = "ZEN"                          # finding code RBL_ZEN
    zone = "zen.spamhaus.org"
    codes = { "127.0.0.2" = 6.0, "127.0.0.4" = { weight = 4.0, meaning = "XBL" } }
    default_weight = 1.0                  # any other 127.0.0.x answer

A code maps to a weight, or to a table with ``weight``, ``meaning`` and ``category`` (the
family the weight counts in; the list's ``category`` otherwise). ``127.255.255.x`` answers are
the list operators' "refused / rate limited / error" codes and can never be configured as a
listing.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DnsListSettings",
    "GreylistSettings",
    "ListCode",
    "RateLimit",
    "RateLimitSettings",
    "ReputationSettings",
    "ip_nameservers",
]

_NAME = re.compile(r"^[A-Z0-9_]{1,32}$")
_ZONE = re.compile(r"^(?=.{1,200}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+"
                   r"[a-z0-9_-]{1,63}$")
Family = Literal["spam", "phish", "malware", "bulk"]


def ip_nameservers(value: tuple[str, ...]) -> tuple[str, ...]:
    """Nameservers are addresses: a name would need a resolver to find the resolver."""
    for ns in value:
        try:
            ipaddress.ip_address(ns)
        except ValueError as exc:
            raise ValueError(f"nameserver must be an IP address: {ns!r}") from exc
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class ListCode(_Section):
    """What one return code of a list means."""

    weight: float
    meaning: str = ""
    category: Family | None = None


def _is_error_code(answer: str) -> bool:
    return answer.startswith("127.255.255.")


class DnsListSettings(_Section):
    """One DNS list. ``codes`` maps an A answer (``127.0.0.2``) to its weight or meaning;
    ``default_weight`` applies to any other ``127.x`` answer (0 makes it informational)."""

    name: str
    zone: str
    codes: dict[str, float | ListCode] = Field(default_factory=dict)
    default_weight: float = 1.0
    category: Family = "spam"
    error_codes: tuple[str, ...] = Field(
        (), description="answers of this list that mean 'refused' besides 127.255.255.x "
        "(URIBL: 127.0.0.1, Spamhaus DBL: 127.0.1.255)")
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip().upper().replace("-", "_")
        if not _NAME.match(value):
            raise ValueError(f"list name must be letters, digits and _ (max 32): {value!r}")
        return value

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        value = value.strip().strip(".").lower()
        if not _ZONE.match(value):
            raise ValueError(f"not a DNS zone: {value!r}")
        return value

    @field_validator("codes")
    @classmethod
    def _codes(cls, value: dict[str, float | ListCode]) -> dict[str, float | ListCode]:
        for answer in value:
            try:
                addr = ipaddress.IPv4Address(answer)
            except ValueError as exc:
                raise ValueError(f"return code must be an IPv4 address: {answer!r}") from exc
            if _is_error_code(answer):
                # Spamhaus and others answer 127.255.255.x for "refused / rate limited":
                # counting one as a listing blocks everybody when the resolver is refused.
                raise ValueError(f"{answer} is an error answer (127.255.255.x), never a listing")
            if not addr.is_loopback:
                raise ValueError(f"return code must be in 127.0.0.0/8: {answer!r}")
        return value

    @model_validator(mode="after")
    def _errors_are_not_codes(self) -> DnsListSettings:
        both = sorted(set(self.error_codes) & set(self.codes))
        if both:
            raise ValueError(f"list {self.name}: {both} both a listing and an error code")
        return self

    def is_error(self, answer: str) -> bool:
        """An answer that means the list refused or failed, never a listing."""
        return _is_error_code(answer) or answer in self.error_codes

    @field_validator("error_codes")
    @classmethod
    def _error_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for answer in value:
            try:
                ipaddress.IPv4Address(answer)
            except ValueError as exc:
                raise ValueError(f"error code must be an IPv4 address: {answer!r}") from exc
        return value

    def code(self, answer: str) -> ListCode:
        """The meaning of ``answer`` (a 127.x address that is not an error code)."""
        given = self.codes.get(answer)
        if given is None:
            return ListCode(weight=self.default_weight, category=self.category)
        if isinstance(given, ListCode):
            return given if given.category else given.model_copy(update={"category":
                                                                         self.category})
        return ListCode(weight=float(given), category=self.category)


class ReputationSettings(_Section):
    """DNS reputation lists: IP lists (DNSBL) for the client and bare URL IPs, domain lists
    (URIBL/DBL/SURBL) for link, From, Reply-To and envelope-sender domains.

    ``budget`` is seconds of DNS for one message, all its list queries together (separate from
    ``[dns] budget``, which is the authentication checks'); a query left unanswered by then is
    "not listed" plus an operational ``REPUTATION_DNS_ERROR`` finding of weight 0.
    """

    ip_lists: tuple[DnsListSettings, ...] = ()
    domain_lists: tuple[DnsListSettings, ...] = ()
    received_hop: bool = Field(
        False, description="also query the first untrusted Received hop (needs [auth] "
        "trusted_relays) when it differs from the client IP")
    check_sender_domains: bool = Field(
        True, description="query From, Reply-To and envelope-sender domains on domain lists")
    max_lookups: int = Field(40, ge=1, description="DNS queries per message, all lists together")
    budget: float = Field(1.0, gt=0, description="seconds of list DNS per message")
    concurrency: int = Field(16, ge=1, le=128, description="queries in flight per message")
    skip_domains: tuple[str, ...] = Field(
        (), description="registrable domains never queried (your own, partners)")
    nameservers: tuple[str, ...] = Field(
        (), description="DNS servers for list questions (a resolver of your own the list "
        "operators allow, an rbldnsd mirror); empty = [dns] nameservers")
    port: int = Field(53, ge=1, le=65535, description="port of those nameservers")

    @field_validator("nameservers")
    @classmethod
    def _ip_nameservers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return ip_nameservers(value)

    @model_validator(mode="after")
    def _unique_names(self) -> ReputationSettings:
        for kind, lists in (("ip_lists", self.ip_lists), ("domain_lists", self.domain_lists)):
            names = [x.name for x in lists]
            dups = sorted({n for n in names if names.count(n) > 1})
            if dups:
                raise ValueError(f"[reputation] {kind}: names used twice: {dups}")
        return self

    @property
    def configured(self) -> bool:
        return any(x.enabled for x in (*self.ip_lists, *self.domain_lists))


RateKey = Literal["client_ip", "sender", "user", "recipient", "outbound_sender"]


class RateLimit(_Section):
    """At most ``limit`` messages (recipients, for ``recipient``) per ``window_seconds`` for one
    value of ``key``. ``client_ip`` counts per address (IPv6 per /64). ``outbound_sender``
    counts the outbound messages of one sender of ours (envelope sender, else From), judged at
    the end of DATA once the direction is known; a message over it is answered 4xx and stays
    in the sending MTA's queue."""

    key: RateKey
    limit: int = Field(ge=1)
    window_seconds: int = Field(ge=1, le=7 * 86400)


class RateLimitSettings(_Section):
    """Rate limits answered at RCPT time with a 4xx. ``redis_url`` (shared with greylisting)
    keeps the counters in Redis so every gateway node sees the same counts; empty keeps them in
    this process's memory."""

    limits: tuple[RateLimit, ...] = ()
    redis_url: str = ""
    key_prefix: str = "mailsift:conn:"
    exempt_networks: tuple[str, ...] = Field(
        ("127.0.0.0/8", "::1/128"), description="clients never rate-limited or greylisted")
    text: str = "4.7.1 Too many messages from {key} {value}, slow down and try again later"

    @field_validator("exempt_networks")
    @classmethod
    def _nets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"bad network {net!r}") from exc
        return value


class GreylistSettings(_Section):
    """Greylisting (off by default): the first message of a triplet (client /24 or /64, envelope
    sender, recipient) is answered 4xx; a retry between ``delay_seconds`` and
    ``retry_window_seconds`` later passes. After ``auto_allow_after`` passed messages the client
    network passes at once for ``auto_allow_seconds``. Allowed senders (admin allow list),
    DMARC-aligned mail and senders known from delivered mail are never greylisted."""

    enabled: bool = False
    delay_seconds: int = Field(300, ge=0)
    retry_window_seconds: int = Field(4 * 3600, ge=60)
    pass_seconds: int = Field(36 * 86400, ge=60, description="a passed triplet stays passed")
    auto_allow_after: int = Field(5, ge=1)
    auto_allow_seconds: int = Field(30 * 86400, ge=60)
    text: str = "4.7.1 Greylisted, please try again in a few minutes"

    @model_validator(mode="after")
    def _window(self) -> GreylistSettings:
        if self.retry_window_seconds <= self.delay_seconds:
            raise ValueError("[greylist] retry_window_seconds must exceed delay_seconds")
        return self
