"""Settings of the machine-learned classifier (``[ml]``): which model, and how its calibrated
probabilities become findings.

The model never decides a category itself. Each *band* maps a probability (``phish``, ``spam``
or ``threat`` = 1 - P(ham)) at or above ``min_probability`` to a finding weight in a family;
the policy thresholds (``[policy.thresholds]``) then decide, exactly as for rule findings. Per
family only the heaviest matching band counts, so bands never add up across each other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["DEFAULT_BANDS", "MlBand", "MlSettings"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class MlBand(_Section):
    """``score >= min_probability`` gives ``weight`` in ``family``."""

    score: Literal["phish", "spam", "threat"]
    min_probability: float = Field(ge=0.0, le=1.0)
    family: Literal["phish", "spam"]
    weight: float = Field(ge=0.0)


#: Chosen from the leave-one-source-out curves (docs/model-card.md), in round numbers:
#: * threat >= 0.80 junks (spam 6): held-out ham sources stayed under 1% there, bar the two
#:   "looks like spam" sets (hard ham, brand notifications);
#: * threat >= 0.95 is SPAM_HIGH (spam 15): junk in Standard, quarantine in Strict;
#: * phish probabilities do not transfer between phish sources (held out, phish is mostly
#:   scored as spam), so alone they only reach PHISH (quarantine) at 0.97, where no held-out ham
#:   went; at 0.90 they add 3, half the phish threshold, to corroborate other phish findings.
DEFAULT_BANDS: tuple[MlBand, ...] = (
    MlBand(score="phish", min_probability=0.97, family="phish", weight=6.0),
    MlBand(score="phish", min_probability=0.90, family="phish", weight=3.0),
    MlBand(score="threat", min_probability=0.95, family="spam", weight=15.0),
    MlBand(score="threat", min_probability=0.80, family="spam", weight=6.0),
)


class MlSettings(_Section):
    """The ``ml`` detector. It runs when listed in ``[detectors] enabled``.

    ``model_path`` is the ``.json`` metadata file of a model (its ``.npz`` arrays sit next to it);
    empty means the model shipped inside the package. ``enabled = false`` while ``ml`` is listed
    as a detector is a contradiction and fails startup.
    """

    enabled: bool = True
    model_path: str = ""
    top_features: int = Field(5, ge=0, le=50, description="contributing features in evidence")
    state: Literal["active", "shadow"] = Field(
        "active", description="shadow: findings are recorded but never act"
    )
    # Last on purpose: a TOML dump writes it as [[ml.bands]] tables, and any plain key written
    # after them would land inside the last band.
    bands: tuple[MlBand, ...] = DEFAULT_BANDS

    @field_validator("bands")
    @classmethod
    def _non_empty(cls, value: tuple[MlBand, ...]) -> tuple[MlBand, ...]:
        if not value:
            raise ValueError("at least one band is needed, or the model could never act")
        return value
