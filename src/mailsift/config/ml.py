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


#: How the bands are chosen (docs/model-card.md, "Threshold rule"): from ham alone, so that no
#: threshold is fitted to the phish or spam it is then measured on, and so that **the model
#: alone never junks ordinary mail** (issue 16: it junked 6% of person-to-person business mail).
#: * threat >= 0.99 junks alone (spam 6): the lowest two-decimal threshold at which every ham
#:   source, with its whole group held out of training (Enron's inbox and sent mail together,
#:   SpamAssassin with CSDMC2010, ...), has at most 0.5% of its messages at or above it (5% of
#:   brand mail, 3% of hard ham: ``mailsift.ml.corpus.HAM_RATE_EXCEPTIONS``), read from
#:   ``metrics.ham_threshold_every_source["0.005"]`` in the model JSON (0.99 for this model;
#:   brand mail decides it: at 0.98, 9% of it was junked by the model alone). A new
#:   organisation's mail looks to the model like a held-out group, so this is the honest
#:   operating point;
#: * threat >= 0.5 corroborates (spam 3, half the spam threshold; and 2 in the phish family, half
#:   the suspected-phishing threshold, as ``ML_THREAT_PHISH_EVIDENCE``): the calibrated model
#:   calls the message more likely a threat than not, which never junks alone; other evidence
#:   must supply the other half (a forged From, obfuscated letters, a credential lure, a
#:   borrowed brand...). Both numbers are fixed points (the calibrated decision point, half
#:   the threshold), not fitted;
#: * nothing from the model alone reaches SPAM_HIGH (quarantined by Strict) or PHISH: the
#:   band that put p_threat >= 0.95 at spam 15 is gone. Rspamd's Bayes adds at most ~5 of the
#:   15 points of a reject, SpamAssassin's BAYES_99 3.5 of 5: a content model corroborates;
#: * phish bands on ``p_phish`` need a model with a phish class (``objective =
#:   "multinomial"``); the shipped model is ham against threat and has none. For such a model
#:   they add 3 at 0.90 (half the phish threshold); none quarantines on its own.
#: Retraining changes the out-of-fold numbers: re-read them and re-run ``mailsift eval --loso``.
DEFAULT_BANDS: tuple[MlBand, ...] = (
    MlBand(score="phish", min_probability=0.90, family="phish", weight=3.0),
    MlBand(score="threat", min_probability=0.5, family="phish", weight=2.0),
    MlBand(score="threat", min_probability=0.99, family="spam", weight=6.0),
    MlBand(score="threat", min_probability=0.5, family="spam", weight=3.0),
)


class MlSettings(_Section):
    """The ``ml`` detector. It runs when listed in ``[detectors] enabled``.

    ``model_path`` is the ``.json`` metadata file of a model (its ``.npz`` arrays sit next to it);
    empty means the model shipped inside the package. ``enabled = false`` while ``ml`` is listed
    as a detector is a contradiction and fails startup.
    """

    enabled: bool = Field(True, description="false while ml is in [detectors] enabled fails "
                          "startup (a contradiction, not a silent switch-off)")
    model_path: str = Field("", description="a model's .json (its .npz beside it); empty: the "
                            "model shipped in the package")
    top_features: int = Field(5, ge=0, le=50, description="contributing features in evidence")
    state: Literal["active", "shadow"] = Field(
        "active", description="shadow: findings are recorded but never act"
    )
    # Last on purpose: a TOML dump writes it as [[ml.bands]] tables, and any plain key written
    # after them would land inside the last band.
    bands: tuple[MlBand, ...] = Field(
        DEFAULT_BANDS, description="{score, min_probability, family, weight}; score is phish, "
        "spam or threat (1 - P(ham)); per family the heaviest matching band counts")

    @field_validator("bands")
    @classmethod
    def _non_empty(cls, value: tuple[MlBand, ...]) -> tuple[MlBand, ...]:
        if not value:
            raise ValueError("at least one band is needed, or the model could never act")
        return value
