"""Categories, actions and the verdict that policy hands to delivery."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from mailsift.core.findings import Family, Finding
from mailsift.core.state import compact_state

__all__ = ["DETECTED", "FAMILIES", "Action", "Category", "DecisionStep", "Family", "Override",
           "Verdict"]


class Category(StrEnum):
    """Detection categories in precedence order: the first that fires wins."""

    MALWARE = "malware"
    PHISH_HIGH = "phish_high"
    PHISH = "phish"
    # Impersonation before SPAM_HIGH: a CEO display-name lure that also scores as spam is an
    # impersonation (quarantined), never spam (junked) -- docs/precedence.md, step 2.
    IMPERSONATION_USER = "impersonation_user"
    IMPERSONATION_DOMAIN = "impersonation_domain"
    SPAM_HIGH = "spam_high"
    SPOOF = "spoof"
    PHISH_SUSPECT = "phish_suspect"
    SPAM = "spam"
    BULK = "bulk"
    CLEAN = "clean"

    @property
    def rank(self) -> int:
        """0 for the category that wins over all others."""
        return _CATEGORY_RANK[self]

    @property
    def family(self) -> Family | None:
        """The finding family whose score decides this category (``None`` for CLEAN)."""
        return _FAMILY_OF[self]


_CATEGORY_RANK = {c: i for i, c in enumerate(Category)}
_FAMILY_OF: Mapping[Category, Family | None] = MappingProxyType({
    Category.MALWARE: Family.MALWARE,
    Category.PHISH_HIGH: Family.PHISH,
    Category.PHISH: Family.PHISH,
    Category.SPAM_HIGH: Family.SPAM,
    Category.SPOOF: Family.SPOOF,
    Category.IMPERSONATION_USER: Family.IMPERSONATION_USER,
    Category.IMPERSONATION_DOMAIN: Family.IMPERSONATION_DOMAIN,
    Category.PHISH_SUSPECT: Family.PHISH,
    Category.SPAM: Family.SPAM,
    Category.BULK: Family.BULK,
    Category.CLEAN: None,
})
#: Every category but CLEAN: the ones with a threshold and an action of their own.
DETECTED: tuple[Category, ...] = tuple(c for c in Category if c is not Category.CLEAN)

#: The families a finding may speak for (``Finding.category``), as plain strings.
FAMILIES: tuple[str, ...] = tuple(f.value for f in Family)


class Action(StrEnum):
    """What delivery does with a message, from mildest to strictest."""

    DELIVER = "deliver"
    TAG = "tag"
    JUNK = "junk"
    QUARANTINE = "quarantine"
    TEMPFAIL = "tempfail"
    REJECT = "reject"

    @property
    def strictness(self) -> int:
        return _ACTION_RANK[self]

    @property
    def accepts(self) -> bool:
        """Whether the message is accepted (answered 250) under this action."""
        return self not in (Action.REJECT, Action.TEMPFAIL)


_ACTION_RANK = {a: i for i, a in enumerate(Action)}


class DecisionStep(StrEnum):
    """The steps of the precedence table (docs/precedence.md); a verdict names the deciding one."""

    GUARDRAIL = "0-guardrail"
    BYPASS = "1-advanced-delivery"
    DETECTION = "2-detection"
    ADMIN_BLOCK = "3-admin-block"
    ADMIN_ALLOW = "4-admin-allow"
    USER_LIST = "5-user-list"
    RECIPIENT_POLICY = "6-recipient-policy"
    ROLLOUT = "7-rollout"
    DETECTOR_ERROR = "8-detector-error"
    MAILFLOW = "9-mailflow"


@compact_state
@dataclass(frozen=True, slots=True)
class Override:
    """A list entry or mode that changed what detection alone would have done."""

    step: DecisionStep
    kind: str
    entry: str
    effect: str
    note: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "step": self.step.value,
            "kind": self.kind,
            "entry": self.entry,
            "effect": self.effect,
            "note": self.note,
        }


@compact_state
@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one message and recipient, with everything needed to explain it.

    ``detected`` is the category detection alone produced; ``category`` the final one after lists.
    ``reasons`` are the findings that made the deciding category fire (all acting findings of that
    family); ``findings`` holds every finding, shadow ones included, for the record.
    """

    category: Category
    action: Action
    score: float
    decided_by: DecisionStep
    explanation: str
    detected: Category = Category.CLEAN
    reasons: tuple[Finding, ...] = ()
    findings: tuple[Finding, ...] = ()
    overrides: tuple[Override, ...] = ()
    versions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    recipient: str | None = None
    policy: str = ""
    family_scores: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    tags: tuple[str, ...] = ()
    direction: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            **({"direction": self.direction} if self.direction else {}),
            "category": self.category.value,
            "action": self.action.value,
            "score": round(self.score, 3),
            "decided_by": self.decided_by.value,
            "explanation": self.explanation,
            "detected": self.detected.value,
            "recipient": self.recipient,
            "policy": self.policy,
            "reasons": [f.code for f in self.reasons],
            "overrides": [o.to_dict() for o in self.overrides],
            "versions": dict(self.versions),
            "family_scores": {k: round(v, 3) for k, v in self.family_scores.items()},
        }
