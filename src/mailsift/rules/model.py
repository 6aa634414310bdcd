"""The rule language's data model: what a rule and a pack are once read from TOML.

A rule has exactly one matcher (``MATCHER_KINDS``); everything else is metadata. Ids are
UPPER_SNAKE and are the finding codes; an id starting with ``__`` is a sub-rule that meta rules
may read but that never becomes a finding (the SpamAssassin convention), so "the word invoice"
can be an input without being a verdict reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from mailsift.core.findings import ArtifactState, Family

__all__ = [
    "CATEGORIES",
    "MATCHER_KINDS",
    "PATTERN_KINDS",
    "PackSpec",
    "RuleMeta",
    "RuleSpec",
    "is_subrule",
    "reserved_prefixes",
    "valid_id",
]

#: Finding families a rule may speak for (``Family``); ``None`` (omitted) means informational.
CATEGORIES: tuple[str, ...] = tuple(f.value for f in Family)


def reserved_prefixes() -> tuple[str, ...]:
    """Code prefixes owned by the pipeline and the installed detectors (their declarations);
    a rule id must not start with one."""
    from mailsift.core.catalog import catalog

    return catalog().reserved_prefixes()


#: Matchers whose value is a regex searched in one view of the message.
PATTERN_KINDS = (
    "body",
    "rawbody",
    "html",
    "raw",
    "uri",
    "uri_host",
    "attachment_name",
    "attachment_type",
)
MATCHER_KINDS = ("header", *PATTERN_KINDS, "check", "meta")

_ID = re.compile(r"^(?:__)?[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
_NO_ARGS: Mapping[str, object] = MappingProxyType({})


def valid_id(rule_id: str) -> bool:
    return bool(_ID.match(rule_id))


def is_subrule(rule_id: str) -> bool:
    return rule_id.startswith("__")


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One rule as written. ``target`` is the header field, check name or meta expression;
    ``pattern`` the regex source (``None`` for exists/absent, checks and metas)."""

    id: str
    description: str
    kind: str
    target: str
    pattern: str | None = None
    flags: str = ""
    presence: str = ""  # "exists" or "absent" for header matchers without a pattern
    args: Mapping[str, object] = field(default_factory=lambda: _NO_ARGS)
    category: str | None = None
    weight: float = 0.0
    state: ArtifactState = ArtifactState.ACTIVE
    tags: tuple[str, ...] = ()
    path: str = ""
    line: int | None = None
    version: str = ""


@dataclass(frozen=True, slots=True)
class PackSpec:
    """A rule pack: a file or a folder of files sharing one ``[pack]`` table."""

    name: str
    description: str
    rules: tuple[RuleSpec, ...]
    version: str
    path: str


@dataclass(frozen=True, slots=True)
class RuleMeta:
    """What the rollout gate and explanations need to know about a compiled rule."""

    id: str
    description: str
    category: str | None
    weight: float
    state: ArtifactState
    version: str
    pack: str
    pack_version: str
    kind: str
    tags: tuple[str, ...] = ()

    @property
    def artifact(self) -> str:
        return f"rules:{self.pack}"
