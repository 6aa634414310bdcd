"""Findings: what a detector saw, with evidence, never what to do about it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mailsift.core.state import compact_state

__all__ = ["ArtifactState", "Family", "Finding", "Stage"]


class Stage(StrEnum):
    """Pipeline stages, run in this order; a later stage may read facts of an earlier one."""

    PARSE = "parse"
    AUTH = "auth"
    CONTENT = "content"
    REPUTATION = "reputation"
    ML = "ml"

    @property
    def order(self) -> int:
        return _STAGE_ORDER[self]


_STAGE_ORDER = {s: i for i, s in enumerate(Stage)}


class Family(StrEnum):
    """What a finding speaks for. Scores add up only inside one family, and each detection
    category (``Category``) is decided by the score of one family. The one list of families:
    rule packs, detector declarations, ``[ml] bands`` and policy all read it from here."""

    MALWARE = "malware"
    PHISH = "phish"
    SPAM = "spam"
    SPOOF = "spoof"
    IMPERSONATION_USER = "impersonation_user"
    IMPERSONATION_DOMAIN = "impersonation_domain"
    BULK = "bulk"


_FAMILY_VALUES = frozenset(f.value for f in Family)


class ArtifactState(StrEnum):
    """Life cycle of a detection artifact (rule pack, rule, model, feed snapshot)."""

    SHADOW = "shadow"
    CANARY = "canary"
    ACTIVE = "active"
    RETIRED = "retired"


@compact_state
@dataclass(frozen=True, slots=True)
class Finding:
    """One named observation with its evidence.

    ``code`` is a stable symbol (``RULE_GTUBE``, ``AUTH_DMARC_FAIL``, ``PARSE_DEPTH_LIMIT``);
    ``category`` is the family the finding speaks for (a ``Family`` value) or ``None`` for purely
    informational findings; ``weight`` counts only inside that family. ``artifact`` and ``version``
    name the artifact that produced it (rule pack, model, feed) so every verdict can list them.
    ``state`` is that artifact's rollout state: shadow findings are recorded but never act.
    """

    code: str
    weight: float
    evidence: tuple[str, ...] = ()
    detector: str = ""
    category: str | None = None
    description: str = ""
    artifact: str = ""
    version: str = ""
    state: ArtifactState = ArtifactState.ACTIVE

    def __post_init__(self) -> None:
        # A family nobody counts would make the finding silently weigh nothing: refuse it (in
        # a detector, that is a detector error, and an error is never "clean").
        if self.category is not None and self.category not in _FAMILY_VALUES:
            raise ValueError(f"finding {self.code}: category {self.category!r} is not a family "
                             f"({', '.join(sorted(_FAMILY_VALUES))}) or None")

    @property
    def acts(self) -> bool:
        """Active findings act everywhere; canary ones only in their scope (policy decides)."""
        return self.state is ArtifactState.ACTIVE

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "code": self.code,
            "weight": self.weight,
            "evidence": list(self.evidence),
            "detector": self.detector,
            "category": self.category,
        }
        if self.description:
            out["description"] = self.description
        if self.artifact:
            out["artifact"] = self.artifact
            out["version"] = self.version
        if self.state is not ArtifactState.ACTIVE:
            out["state"] = self.state.value
        return out
