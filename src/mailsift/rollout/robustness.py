"""The robustness set: hand-written legitimate mail that must be delivered and modern lures that
must end as junk or stricter (``mailsift/data/robustness``, see its README).

Every future model and rule change is held to it: ``tests/test_robustness.py`` scans it with the
default settings, and the promotion gate replays it on every check (known-good mail the candidate
must not quarantine, lures the candidate must not let through when the active set catches them).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Literal

from mailsift.core.verdict import Action

__all__ = ["CAUGHT", "ROBUSTNESS_SOURCE", "RobustnessCase", "caught", "robustness_cases"]

ROBUSTNESS_SOURCE = "robustness-set"
# what "junk or stricter" means for a lure: the message does not reach the inbox
CAUGHT = frozenset({Action.JUNK, Action.QUARANTINE, Action.REJECT})

_FOLDERS: tuple[tuple[str, Literal["ham", "threat"]], ...] = (("legit", "ham"),
                                                               ("lures", "threat"))


@dataclass(frozen=True, slots=True)
class RobustnessCase:
    """One message of the set: ``label`` ham (must be delivered) or threat (junk or stricter),
    ``name`` the file name without ``.eml`` (``07-keys-in-drawer``), ``raw`` its bytes."""

    label: Literal["ham", "threat"]
    name: str
    raw: bytes

    @property
    def id(self) -> str:
        """``legit/07-keys-in-drawer`` or ``lures/03-docusign-workers-dev``."""
        return f"{'legit' if self.label == 'ham' else 'lures'}/{self.name}"


def caught(action: Action) -> bool:
    """Whether a lure scanned to ``action`` counts as caught (junk, quarantine or reject)."""
    return action in CAUGHT


def robustness_cases(label: Literal["ham", "threat"] | None = None) -> list[RobustnessCase]:
    """Every case of the set (or of one label), legitimate first, each folder sorted by name."""
    root = resources.files("mailsift") / "data" / "robustness"
    cases: list[RobustnessCase] = []
    for folder, folder_label in _FOLDERS:
        if label is not None and folder_label != label:
            continue
        entries = sorted((e for e in (root / folder).iterdir()
                          if e.name.endswith(".eml")), key=lambda e: e.name)
        cases.extend(RobustnessCase(folder_label, e.name.removesuffix(".eml"), e.read_bytes())
                     for e in entries)
    return cases
