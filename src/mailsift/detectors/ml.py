"""ML detector: the linear model's calibrated phish/spam probabilities as ``ML_*`` findings.

The model does not pick a category. ``[ml] bands`` turn probabilities into weights in the phish
or spam family, and the policy thresholds decide, as for every other finding; per family only the
heaviest matching band counts. Each finding carries the probabilities, the band that fired, the
model's name and version hash, and the features that pushed the score, so an admin can read why.

Cost: features ~0.6 ms and scoring ~0.2 ms per message (bench/ml_bench.py); the features that
pushed a score are only computed when a band fires. The model is loaded once per process
(a cache keyed by file path and modification time) so worker processes share nothing mutable.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mailsift.config.ml import MlSettings
from mailsift.config.schema import Settings
from mailsift.core.context import ScanContext
from mailsift.core.errors import ConfigError
from mailsift.core.findings import ArtifactState, Family, Finding, Stage
from mailsift.core.message import ParsedMessage
from mailsift.detectors.base import Services
from mailsift.detectors.spec import CodeSpec, DetectorSpec
from mailsift.ml.features import extract

if TYPE_CHECKING:  # numpy, from the [ml] extra: imported when the detector is built
    from mailsift.ml.model import LinearModel, Prediction

__all__ = ["CODES", "SPEC", "MlDetector", "build", "cached_model"]

_BANDS = "the heaviest matching [ml] band"
CODES: Mapping[str, CodeSpec] = {
    "ML_PHISH": CodeSpec(0.0, Family.PHISH, "The content model finds this message likely "
                         "phishing", weight_note=_BANDS),
    "ML_SPAM": CodeSpec(0.0, Family.SPAM, "The content model finds this message likely spam",
                        weight_note=_BANDS),
    "ML_THREAT_PHISH_EVIDENCE": CodeSpec(
        0.0, Family.PHISH, "The content model finds this message a likely threat; this counts "
        "only together with phishing evidence of other detectors", weight_note=_BANDS),
}


def _code(family: str, score: str) -> str:
    """The finding code of a band. A band on the threat score in the phish family is not a
    phishing judgement (a ham-against-threat model cannot tell phish from spam): it says the
    model backs whatever phishing evidence the rest of the pipeline found."""
    if family == "phish":
        return "ML_THREAT_PHISH_EVIDENCE" if score == "threat" else "ML_PHISH"
    return "ML_SPAM"

log = logging.getLogger("mailsift.ml")

_lock = threading.Lock()
_models: dict[tuple[str, float], LinearModel] = {}


def cached_model(path: str | Path) -> LinearModel:
    """Load ``path`` once per process (reloaded only if the file changes)."""
    resolved = str(Path(path).resolve())
    try:
        key = (resolved, os.stat(Path(resolved).with_suffix(".npz")).st_mtime)
    except OSError as exc:
        raise ConfigError(f"model arrays not found: {exc}", source=resolved) from exc
    from mailsift.ml.model import load_model

    with _lock:
        model = _models.get(key)
        if model is None:
            model = load_model(resolved)
            _models.clear()  # one model per process is the norm; never grow without bound
            _models[key] = model
        return model


class MlDetector:
    name = "ml"
    stage = Stage.ML
    codes = frozenset(CODES)

    def __init__(self, model: LinearModel, settings: MlSettings,
                 candidates: Sequence[tuple[LinearModel, ArtifactState]] = ()) -> None:
        self.model = model
        self.settings = settings
        self.artifact = f"model:{model.name}"
        self.state = ArtifactState(settings.state)
        # Staged versions (shadow/canary) from the rollout registry: scored on the same
        # features, their findings carry their own version and state.
        self.candidates = tuple(candidates)

    def predict(self, message: ParsedMessage, recipients: Sequence[str] = ()) -> Prediction:
        """The model's view of one message (also used by ``mailsift eval`` for its curves)."""
        return self.model.predict(extract(message, recipients), top=self.settings.top_features)

    def run(self, ctx: ScanContext) -> Sequence[Finding]:
        features = extract(ctx.message, ctx.envelope.rcpt_to)
        found = self.findings(self._scored(self.model, features))
        for model, state in self.candidates:
            found.extend(self.findings(self._scored(model, features), model, state))
        return found

    def _scored(self, model: LinearModel, features: Mapping[str, float]) -> Prediction:
        # Naming the contributing features costs about a third of scoring; most mail fires no
        # band and gets no finding to explain, so only the messages that do are explained.
        scored = model.score(features)
        prediction = scored.prediction()
        top = self.settings.top_features
        if top and any(prediction.p(b.score) >= b.min_probability for b in self.settings.bands):
            prediction = scored.prediction(top)
        return prediction

    def findings(self, prediction: Prediction, model: LinearModel | None = None,
                 state: ArtifactState | None = None) -> list[Finding]:
        model = model or self.model
        best: dict[str, tuple[float, str, str]] = {}
        for band in self.settings.bands:
            p = prediction.p(band.score)
            if p >= band.min_probability and band.weight > best.get(band.family, (0.0, "", ""))[0]:
                best[band.family] = (band.weight, band.score,
                                     f"band: p_{band.score} >= {band.min_probability}")
        out = []
        # Only the classes this model has: a binary (ham/threat) model printed "p_phish=0.000,
        # p_spam=0.000, p_threat=0.979", which reads as if phish and spam had been ruled out.
        shown = [c for c in ("phish", "spam") if c in prediction.probabilities]
        probs = ", ".join(f"p_{c}={prediction.p(c):.3f}" for c in (*shown, "threat"))
        for family, (weight, score, band_text) in best.items():
            # A threat band is explained by its family's class, or by the one threat class of a
            # binary (ham/threat) model.
            pushed = prediction.contributions.get(
                score if score != "threat" else family) or prediction.contributions.get(score, ())
            evidence = (probs, band_text, *(f"{n} (+{w:.2f})" for n, w in pushed))
            code = _code(family, score)
            out.append(Finding(
                code=code, weight=weight, evidence=evidence,
                detector=self.name, category=family, description=CODES[code].description,
                artifact=f"model:{model.name}", version=model.version,
                state=state or self.state,
            ))
        return out

    def versions(self) -> Mapping[str, str]:
        out = {self.artifact: self.model.version}
        for model, state in self.candidates:
            out[f"model:{model.name}#{state.value}"] = model.version
        return out


def build(settings: Settings, services: Services) -> MlDetector:
    """The configured model (or the shipped one), replaced by the registry's active version of
    it when there is one, plus its staged versions (``services.rollout``)."""
    from mailsift.ml.model import shipped_model_path

    ml = settings.ml
    if not ml.enabled:
        raise ConfigError("detector 'ml' is listed in [detectors] enabled but [ml] enabled is "
                          "false; remove one of the two", source="ml")
    model = cached_model(ml.model_path or shipped_model_path())
    rollout = services.rollout
    candidates: list[tuple[LinearModel, ArtifactState]] = []
    if rollout is not None:
        # One model slot: a registry version of any name replaces or shadows the configured one.
        for dep in (d for d in rollout.deployments if d.kind == "model"):
            if not dep.path or (dep.version == model.version
                                and dep.state is ArtifactState.ACTIVE):
                continue
            if dep.state is ArtifactState.ACTIVE:
                model = cached_model(dep.path)
            elif dep.state in (ArtifactState.SHADOW, ArtifactState.CANARY):
                try:
                    candidates.append((cached_model(dep.path), dep.state))
                except ConfigError as exc:  # a staged model never stops the one that acts
                    log.error("staged %s@%s not run: %s", dep.artifact, dep.version, exc)
    return MlDetector(model, ml, candidates)


SPEC = DetectorSpec(
    name="ml", stage=Stage.ML, order=10, prefix="ML_", codes=CODES, settings=MlSettings,
    factory=build, requires=("numpy", "ml"),
    summary="The content model's calibrated phish/spam probabilities, weighted by [ml] bands",
)
