"""Core types shared by every layer. Standard library only."""

from mailsift.core.auth import (
    ArcResult,
    AuthResults,
    AuthStatus,
    CompAuth,
    DkimResult,
    DmarcResult,
    SpfResult,
)
from mailsift.core.context import ScanContext
from mailsift.core.envelope import Connection, Envelope
from mailsift.core.errors import (
    ConfigError,
    DeliveryError,
    DeliveryTempError,
    DetectorError,
    DetectorTimeout,
    DnsError,
    DnsTempError,
    InputError,
    LimitExceeded,
    MailsiftError,
    ParseError,
    RuleError,
    StoreError,
)
from mailsift.core.findings import ArtifactState, Family, Finding, Stage
from mailsift.core.message import Address, Attachment, MimePart, ParsedMessage, Url
from mailsift.core.protocols import Clock, DnsAnswer, Resolver, SystemClock
from mailsift.core.verdict import FAMILIES, Action, Category, DecisionStep, Override, Verdict

__all__ = [
    "FAMILIES",
    "Action",
    "Address",
    "ArcResult",
    "ArtifactState",
    "Attachment",
    "AuthResults",
    "AuthStatus",
    "Category",
    "Clock",
    "CompAuth",
    "ConfigError",
    "Connection",
    "DecisionStep",
    "DeliveryError",
    "DeliveryTempError",
    "DetectorError",
    "DetectorTimeout",
    "DkimResult",
    "DmarcResult",
    "DnsAnswer",
    "DnsError",
    "DnsTempError",
    "Envelope",
    "Family",
    "Finding",
    "InputError",
    "LimitExceeded",
    "MailsiftError",
    "MimePart",
    "Override",
    "ParseError",
    "ParsedMessage",
    "Resolver",
    "RuleError",
    "ScanContext",
    "SpfResult",
    "Stage",
    "StoreError",
    "SystemClock",
    "Url",
    "Verdict",
]
