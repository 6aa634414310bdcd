"""The rules detector: evaluates the rule packs (built-in default pack plus configured ones).

Codes are the rule ids, which are data; each finding names its pack as the artifact
(``rules:<pack>``) with the pack's content hash as version, and carries the rule's rollout state
so shadow rules are recorded without acting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mailsift.config.schema import Settings
from mailsift.core.context import ScanContext
from mailsift.core.findings import Finding, Stage
from mailsift.detectors.base import Services
from mailsift.rules import BUILTIN_PACK, RuleMeta, RuleSet, load_pack

__all__ = ["RulesDetector", "build"]


class RulesDetector:
    """Runs a compiled ``RuleSet`` on each message."""

    name = "rules"
    stage = Stage.CONTENT

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.codes: frozenset[str] = ruleset.codes

    def run(self, ctx: ScanContext) -> Sequence[Finding]:
        return self.ruleset.findings(ctx.message, detector=self.name)

    def versions(self) -> Mapping[str, str]:
        return self.ruleset.versions()

    def describe(self, code: str) -> RuleMeta | None:
        """Metadata of rule ``code`` (description, category, weight, state, versions)."""
        return self.ruleset.rules.get(code)


def build(settings: Settings, services: Services) -> RulesDetector:
    """Load the built-in pack (unless ``rules.builtin`` is off) and ``rules.paths``, in order."""
    rules = settings.rules
    packs = [load_pack(BUILTIN_PACK)] if rules.builtin else []
    packs.extend(load_pack(path) for path in rules.paths)
    ruleset = RuleSet(
        packs,
        disabled=rules.disabled,
        weights=rules.weights,
        max_raw_bytes=rules.max_raw_bytes,
        max_body_chars=rules.max_body_chars,
    )
    return RulesDetector(ruleset)
