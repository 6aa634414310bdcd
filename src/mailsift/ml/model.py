"""The linear model artifact: safe storage, loading, and scoring with explanations.

A model is two files side by side: ``NAME.json`` (metadata: classes, calibration temperature,
feature version, training sources and their licences, metrics, version hash) and ``NAME.npz``
(plain arrays: the weight matrix, intercepts and the vocabulary as UTF-8 bytes). Nothing is
pickled: ``numpy.load(allow_pickle=False)`` reads the arrays and ``json`` the rest, so a model
file cannot run code. The version is a hash of everything that changes a score, checked on load.

Scoring is a sparse dot product done with dict look-ups (the vocabulary maps a feature name to
its row), which keeps it around a tenth of a millisecond per message, and lets every score name
the features that pushed it. Feature values are normalised in two groups, words
(:data:`~mailsift.ml.features.TEXT_PREFIXES`) and everything else, each to length
1/sqrt(2), exactly as in training (:func:`mailsift.ml.train.group_normalize`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mailsift.core.errors import ConfigError
from mailsift.ml.features import FEATURE_VERSION, TEXT_PREFIXES

__all__ = ["FORMAT", "LinearModel", "Prediction", "Scored", "group_normalized", "load_model",
           "save_model", "shipped_model_path"]

log = logging.getLogger(__name__)

FORMAT = "mailsift-linear/1"
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)  # fixed, so the same model always gives the same bytes

FloatArray = npt.NDArray[np.float32]
_SQRT2 = math.sqrt(2.0)


def group_normalized(values: FloatArray, text: npt.NDArray[np.bool_]) -> FloatArray:
    """``values`` with the word group (``text``) and the rest each scaled to length 1/sqrt(2)."""
    out = values.copy()
    for mask in (text, ~text):
        part = values[mask]
        if part.size:
            out[mask] = part / (float(np.sqrt(np.dot(part, part))) * _SQRT2)
    return out


@dataclass(frozen=True, slots=True)
class Prediction:
    """Calibrated class probabilities and the features that pushed the threat classes.

    ``contributions`` maps a class (``phish``, ``spam``) to (feature, contribution towards that
    class against ham) pairs, strongest first.
    """

    probabilities: Mapping[str, float]
    contributions: Mapping[str, tuple[tuple[str, float], ...]] = field(default_factory=dict)

    def p(self, name: str) -> float:
        """``phish``, ``spam``, ``ham``, or ``threat`` (= 1 - P(ham))."""
        if name == "threat":
            return 1.0 - self.probabilities.get("ham", 1.0)
        return self.probabilities.get(name, 0.0)


@dataclass(frozen=True, slots=True, eq=False)
class Scored:
    """One message scored by a model: its probabilities, and what is needed to explain them."""

    model: LinearModel
    rows: list[int]
    vals: FloatArray
    probabilities: Mapping[str, float]

    def prediction(self, top: int = 0) -> Prediction:
        return Prediction(self.probabilities, self.model.contributions(self.rows, self.vals, top))


@dataclass(frozen=True, eq=False)
class LinearModel:
    """A multinomial linear model over named features (rows of ``coef`` follow ``vocabulary``)."""

    name: str
    classes: tuple[str, ...]
    vocabulary: tuple[str, ...]
    coef: FloatArray
    intercept: FloatArray
    temperature: float = 1.0
    feature_version: str = FEATURE_VERSION
    metadata: Mapping[str, Any] = field(default_factory=dict)
    index: Mapping[str, int] = field(init=False, repr=False)
    text_rows: npt.NDArray[np.bool_] = field(init=False, repr=False)
    version: str = field(init=False)

    def __post_init__(self) -> None:
        if self.coef.shape != (len(self.vocabulary), len(self.classes)):
            raise ConfigError(f"model {self.name}: weights {self.coef.shape} do not match "
                              f"{len(self.vocabulary)} features x {len(self.classes)} classes")
        if "ham" not in self.classes:
            raise ConfigError(f"model {self.name}: no 'ham' class")
        object.__setattr__(self, "index", {n: i for i, n in enumerate(self.vocabulary)})
        object.__setattr__(self, "text_rows", np.fromiter(
            (n.startswith(TEXT_PREFIXES) for n in self.vocabulary), dtype=bool,
            count=len(self.vocabulary)))
        object.__setattr__(self, "version", self._hash())

    @property
    def noncommercial_sources(self) -> tuple[str, ...]:
        """Training sources whose terms forbid commercial use (empty for the shipped model)."""
        return tuple(self.metadata.get("noncommercial_sources", ()))

    def _hash(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps([FORMAT, self.classes, self.temperature, self.feature_version])
                 .encode())
        h.update(np.ascontiguousarray(self.coef, dtype=np.float32).tobytes())
        h.update(np.ascontiguousarray(self.intercept, dtype=np.float32).tobytes())
        h.update("\n".join(self.vocabulary).encode())
        return h.hexdigest()[:12]

    def logits(self, features: Mapping[str, float]) -> tuple[FloatArray, list[int], FloatArray]:
        # The vocabulary look-up runs at C speed (map + fromiter): a Python loop over a
        # message's few hundred features was a tenth of a scan worker's time.
        n = len(features)
        found = np.fromiter(map(self.index.get, features, repeat(-1, n)), dtype=np.int64,
                            count=n)
        known = found >= 0
        at = found[known]
        vals = np.fromiter(features.values(), dtype=np.float32, count=n)[known]
        if at.size:
            # normalised over the known features, per group, exactly as in training
            vals = group_normalized(vals, self.text_rows[at])
            z = vals @ self.coef[at] + self.intercept
        else:
            z = self.intercept.copy()
        return z, at.tolist(), vals

    def predict(self, features: Mapping[str, float], top: int = 0) -> Prediction:
        return self.score(features).prediction(top)

    def score(self, features: Mapping[str, float]) -> Scored:
        """Probabilities now; the contributing features only if asked (:meth:`Scored.prediction`
        with ``top``), without scoring the message a second time."""
        z, rows, vals = self.logits(features)
        z = z / self.temperature
        z = z - z.max()
        e = np.exp(z)
        probs = e / e.sum()
        probabilities = {c: float(p) for c, p in zip(self.classes, probs, strict=True)}
        return Scored(self, rows, vals, probabilities)

    def contributions(self, rows: list[int], vals: FloatArray,
                      top: int) -> dict[str, tuple[tuple[str, float], ...]]:
        """Per threat class, the ``top`` features that pushed it most against ham."""
        out: dict[str, tuple[tuple[str, float], ...]] = {}
        if not (top and rows):
            return out
        ham = self.classes.index("ham")
        block = self.coef[rows]
        for ci, cls in enumerate(self.classes):
            if cls == "ham":
                continue
            push = vals * (block[:, ci] - block[:, ham])
            order = np.argsort(-push)[:top]
            out[cls] = tuple(
                (self.vocabulary[rows[int(i)]], round(float(push[int(i)]), 3))
                for i in order if push[int(i)] > 0
            )
        return out

    def predict_logits_batch(self, matrix: Any) -> npt.NDArray[np.float64]:
        """Raw logits for an already normalised sparse matrix (training and evaluation)."""
        return np.asarray(matrix @ self.coef.astype(np.float64) + self.intercept, dtype=np.float64)


def _write_npz(path: Path, arrays: Mapping[str, np.ndarray[Any, Any]]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def save_model(model: LinearModel, json_path: Path) -> Path:
    """Write ``json_path`` and its ``.npz`` twin; returns the JSON path."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    vocab = np.frombuffer("\n".join(model.vocabulary).encode(), dtype=np.uint8)
    _write_npz(json_path.with_suffix(".npz"), {
        "coef": model.coef.astype(np.float32),
        "intercept": model.intercept.astype(np.float32),
        "vocabulary": vocab,
    })
    meta = {
        **dict(model.metadata),
        "format": FORMAT,
        "name": model.name,
        "version": model.version,
        "classes": list(model.classes),
        "temperature": model.temperature,
        "feature_version": model.feature_version,
        "features": len(model.vocabulary),
    }
    json_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return json_path


def load_model(json_path: str | Path) -> LinearModel:
    """Load a model; a wrong format, feature version or hash is a ``ConfigError``."""
    path = Path(json_path)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as data:
            coef = np.asarray(data["coef"], dtype=np.float32)
            intercept = np.asarray(data["intercept"], dtype=np.float32)
            vocab_bytes = bytes(np.asarray(data["vocabulary"], dtype=np.uint8).tobytes())
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot load model: {exc}", source=str(path)) from exc
    if meta.get("format") != FORMAT:
        raise ConfigError(f"unknown model format {meta.get('format')!r}", source=str(path))
    if meta.get("feature_version") != FEATURE_VERSION:
        raise ConfigError(f"model built for features v{meta.get('feature_version')}, this "
                          f"mailsift extracts v{FEATURE_VERSION}: retrain it", source=str(path))
    vocabulary = tuple(vocab_bytes.decode("utf-8").split("\n")) if vocab_bytes else ()
    temperature = float(meta.get("temperature", 1.0))
    if not math.isfinite(temperature) or temperature <= 0:
        raise ConfigError(f"bad temperature {temperature}", source=str(path))
    model = LinearModel(
        name=str(meta.get("name", path.stem)),
        classes=tuple(meta["classes"]),
        vocabulary=vocabulary,
        coef=coef,
        intercept=intercept,
        temperature=temperature,
        feature_version=str(meta["feature_version"]),
        metadata={k: v for k, v in meta.items() if k not in _OWN_KEYS},
    )
    if meta.get("version") and meta["version"] != model.version:
        raise ConfigError(f"model hash {model.version} does not match its metadata "
                          f"{meta['version']} (damaged or edited)", source=str(path))
    if model.noncommercial_sources:
        log.warning("model %s (%s) learned from non-commercial data (%s): its use is bound by "
                    "those terms", model.name, model.version,
                    ", ".join(model.noncommercial_sources))
    return model


_OWN_KEYS = frozenset({"format", "name", "version", "classes", "temperature", "feature_version",
                       "features"})


def shipped_model_path() -> Path:
    """The model that ships inside the package (built by ``make model``)."""
    return Path(__file__).resolve().parent / "models" / "default.json"
