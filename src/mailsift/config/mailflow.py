"""Settings of mail direction (``[direction]``) and mail-flow rules (``[[mailflow.rules]]``).

A rule is ``name``, ``mode``, ``priority``, ``stage`` and ``stop``, with conditions under
``[mailflow.rules.if]`` (all must match), ``[mailflow.rules.any]`` (at least one must match,
when given) and ``[mailflow.rules.except]`` (none may match), and actions under
``[mailflow.rules.then]``. Unknown fields and impossible combinations are refused when the
file loads (``mailsift.mailflow.loader`` names the file and line).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mailsift.core.verdict import Category

__all__ = ["CompromiseSettings", "Conditions", "DirectionSettings", "FlowActions", "FlowRule",
           "MailflowSettings"]

Direction = Literal["inbound", "outbound", "internal"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True,
                              populate_by_name=True)


def _networks(value: tuple[str, ...]) -> tuple[str, ...]:
    for entry in value:
        ipaddress.ip_network(entry.strip(), strict=False)  # ValueError names the bad entry
    return tuple(v.strip() for v in value)


def _lower(value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v.strip().lower() for v in value if v.strip())


class CompromiseSettings(_Section):
    """When an account of ours starts sending like a compromised one: an alert (kind
    ``compromised_account``) with the evidence. Counted per outbound sender and hour, in the
    ``[ratelimit] redis_url`` Redis when set (every node adds to one count), else in memory."""

    enabled: bool = True
    min_messages: int = Field(30, ge=1, description="outbound messages in an hour before the "
                              "volume signal is judged")
    volume_ratio: float = Field(5.0, ge=1.0, description="this hour's outbound messages over "
                                "the sender's hourly average of the baseline hours")
    baseline_hours: int = Field(24, ge=1, le=24 * 14)
    new_recipients: int = Field(25, ge=1, description="outside recipients never seen from "
                                "this sender (within recipient_memory_days) in an hour")
    recipient_memory_days: int = Field(30, ge=1)
    bad_messages: int = Field(5, ge=1, description="outbound spam, phishing or malware "
                              "verdicts in an hour ...")
    bad_share: float = Field(0.3, gt=0, le=1, description="... that are at least this share "
                             "of the sender's outbound messages that hour")
    held_by_limit: int = Field(3, ge=1, description="messages of the hour held by the "
                               "outbound_sender rate limit")
    realert_hours: float = Field(6.0, gt=0, description="one alert per sender in this time")


class DirectionSettings(_Section):
    """Which mail is ours: inbound (from outside to us), outbound (from us to outside) or
    internal (from us to us)."""

    accepted_domains: tuple[str, ...] = Field(
        (), description="our domains (and their subdomains); empty: every message is inbound")
    internal_networks: tuple[str, ...] = Field(
        (), description="clients (addresses or networks) whose mail is ours; the client is the "
        "XFORWARD address when the MTA in front is trusted to send it ([smtp] xforward_hosts)")
    authenticated_is_internal: bool = Field(
        True, description="a message the MTA in front received with SMTP AUTH (its Received "
        "header says ESMTPA/ESMTPSA) or on a submission listener is ours")
    submission_ports: tuple[int, ...] = Field(
        (587, 465), description="the MTA's listener ports that are submission (XFORWARD PORT "
        "is not passed by Postfix; these match a Received header 'port N' note when present)")
    strip_outbound_headers: tuple[str, ...] = Field(
        ("x-mailsift-", "x-spam-"), description="header name prefixes removed from outbound "
        "mail: our verdict headers never leave the organisation")
    compromise: CompromiseSettings = Field(default_factory=CompromiseSettings)

    @field_validator("internal_networks")
    @classmethod
    def _nets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _networks(value)

    @field_validator("accepted_domains", "strip_outbound_headers")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _lower(value)


class Conditions(_Section):
    """What a rule looks at. Every field given must match (``if``); in ``any`` one of them;
    in ``except`` none. Address lists take addresses, ``@domain`` or ``domain`` (subdomains
    match too) and ``group:NAME`` (a list under ``[mailflow.groups]``)."""

    sender: tuple[str, ...] = ()
    recipient: tuple[str, ...] = ()
    direction: tuple[Direction, ...] = ()
    header_contains: dict[str, str] = Field(default_factory=dict)
    header_regex: dict[str, str] = Field(default_factory=dict)
    subject_words: tuple[str, ...] = ()
    body_words: tuple[str, ...] = ()
    subject_or_body_words: tuple[str, ...] = ()
    attachment_name: tuple[str, ...] = Field((), description="glob patterns, e.g. '*.iso'")
    attachment_extension: tuple[str, ...] = ()
    attachment_type: tuple[str, ...] = Field(
        (), description="content types, e.g. 'application/zip'")
    size_over: int | None = Field(None, ge=0, description="bytes")
    size_under: int | None = Field(None, ge=1, description="bytes")
    category: tuple[str, ...] = ()
    score_at_least: float | None = None
    finding: tuple[str, ...] = ()
    spf: tuple[str, ...] = Field((), description="SPF results, e.g. ['fail', 'softfail']")
    dkim: tuple[str, ...] = ()
    dmarc: tuple[str, ...] = ()
    authenticated: bool | None = Field(None, description="aligned SPF/DKIM (or trusted ARC)")
    client_ip: tuple[str, ...] = ()

    @field_validator("direction", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("sender", "recipient", "subject_words", "body_words",
                     "subject_or_body_words", "attachment_name", "attachment_extension",
                     "attachment_type", "category", "spf", "dkim", "dmarc", "client_ip",
                     "finding", mode="before")
    @classmethod
    def _list(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("category")
    @classmethod
    def _categories(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for c in value:
            Category(c)  # ValueError names the bad category
        return value

    @field_validator("client_ip")
    @classmethod
    def _ips(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _networks(value)

    @field_validator("header_regex")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"bad regex for header {name!r}: {exc}") from exc
        return value

    def given(self) -> list[str]:
        """The names of the conditions that are set."""
        return [k for k, v in self if v not in ((), {}, None)]

    def needs_verdict(self) -> bool:
        return bool(self.category or self.score_at_least is not None or self.finding
                    or self.spf or self.dkim or self.dmarc or self.authenticated is not None)


class FlowActions(_Section):
    """What a matching rule does."""

    prepend_subject: str = ""
    add_header: dict[str, str] = Field(default_factory=dict)
    set_header: dict[str, str] = Field(default_factory=dict)
    remove_header: tuple[str, ...] = ()
    banner_text: str = Field("", description="prepended to the text part, once per thread")
    banner_html: str = Field("", description="prepended to the HTML part (escaped text is "
                             "used when empty and banner_text is set)")
    redirect: tuple[str, ...] = Field((), description="deliver to these instead")
    bcc: tuple[str, ...] = Field((), description="also deliver to these")
    reject: str = Field("", description="reject with this text (5.7.1 ...)")
    quarantine: bool = False
    junk: bool = False
    bypass: tuple[str, ...] = Field((), description="categories this rule lets through "
                                    "(never malware; a sender must be authenticated)")

    @field_validator("remove_header", "redirect", "bcc", "bypass", mode="before")
    @classmethod
    def _list(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("redirect", "bcc")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for a in value:
            if "@" not in a or any(c in a for c in " <>,\r\n"):
                raise ValueError(f"not an address: {a!r}")
        return _lower(value)

    @field_validator("add_header", "set_header")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, val in value.items():
            if not re.fullmatch(r"[!-9;-~]+", name) or "\n" in val or "\r" in val:
                raise ValueError(f"bad header field {name!r}")
        return value

    @field_validator("bypass")
    @classmethod
    def _bypass(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for c in value:
            if Category(c) is Category.MALWARE:
                raise ValueError("a flow rule can never bypass malware")
        return value

    @model_validator(mode="after")
    def _possible(self) -> FlowActions:
        decisions = [n for n in ("reject", "quarantine", "junk") if getattr(self, n)]
        if len(decisions) > 1:
            raise ValueError(f"impossible action: {' and '.join(decisions)} together")
        if decisions and self.bypass:
            raise ValueError(f"impossible action: {decisions[0]} and bypass together")
        if self.reject and not self.reject[:1].isdigit():
            object.__setattr__(self, "reject", f"5.7.1 {self.reject}")
        if not any(v not in ((), {}, "", False) for _, v in self):
            raise ValueError("a rule needs at least one action under [mailflow.rules.then]")
        return self

    def decides(self) -> bool:
        return bool(self.reject or self.quarantine or self.junk or self.bypass)


class FlowRule(_Section):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    mode: Literal["enforce", "test", "test_with_notify"] = "enforce"
    priority: int = 0
    stage: Literal["before", "after"] = Field(
        "after", description="before: on the message as it arrived, before detection (no "
        "verdict conditions); after: with the verdict")
    stop: bool = Field(False, description="stop processing later rules when this one matches")
    notify: tuple[str, ...] = Field(
        (), description="test_with_notify: who is told what the rule would have done -- "
        "addresses, and/or 'sender' (the sender, when it is ours); empty: [mailflow] notify_to")
    if_: Conditions = Field(default_factory=Conditions, alias="if")
    any: Conditions = Field(default_factory=Conditions)
    except_: Conditions = Field(default_factory=Conditions, alias="except")
    then: FlowActions

    @field_validator("notify", mode="before")
    @classmethod
    def _notify(cls, value: object) -> object:
        items = (value,) if isinstance(value, str) else value
        for a in items if isinstance(items, (list, tuple)) else ():
            if not isinstance(a, str) or (a != "sender" and (
                    "@" not in a or any(c in a for c in " <>,\r\n"))):
                raise ValueError(f"notify wants addresses or 'sender', not {a!r}")
        return tuple(a.strip().lower() for a in items) \
            if isinstance(items, (list, tuple)) else items

    @model_validator(mode="after")
    def _stage(self) -> FlowRule:
        if self.stage == "before":
            for part in (self.if_, self.any, self.except_):
                if part.needs_verdict():
                    raise ValueError("impossible rule: a before-detection rule cannot test the "
                                     "verdict, findings or authentication results")
            if self.then.bypass:
                raise ValueError("impossible rule: bypass needs the verdict (stage = 'after')")
        return self


class MailflowSettings(_Section):
    rules: tuple[FlowRule, ...] = ()
    notify_to: tuple[str, ...] = Field(
        (), description="admin addresses told of test_with_notify hits of rules without "
        "their own notify list")
    groups: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_and_groups(self) -> MailflowSettings:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate rule names: {', '.join(dupes)}")
        for rule in self.rules:
            for part in (rule.if_, rule.any, rule.except_):
                for entry in (*part.sender, *part.recipient):
                    if entry.startswith("group:") and entry[6:] not in self.groups:
                        raise ValueError(f"rule {rule.name}: unknown group {entry[6:]!r}")
        return self
