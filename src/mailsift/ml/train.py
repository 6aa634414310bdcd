"""Training: labelled sources -> features -> a calibrated multinomial logistic regression.

Choices, and why:

* **Source-grouped everything.** Calibration data and the reported metrics come from
  out-of-fold predictions where whole *sources* are held out (``GroupKFold``), never random
  messages: a random split lets a model score well by recognising a mailbox.
* **Vocabulary shared by sources.** A feature is kept only if it occurs in at least
  ``min_sources`` sources. Tokens that only one collection has (its list name, its honeypot's
  address, its redaction marker) are mailbox identity, not threat.
* **Sources weigh alike.** Each source's messages together weigh the same within its label, and
  each label weighs the same overall, so the biggest source cannot define "ham".
* **Ham against threat.** The default objective is binary: ham against everything else (spam
  and phish as one "threat" class, ``classes = ("ham", "threat")``). The detector's junk
  decision is P(threat) = 1 - P(ham), and a three-class softmax also spends its weights on
  telling spam from phish, which does not transfer between phish sources (held out, phish is
  scored as spam); the binary model ranks held-out phish against ham better (docs/model-card.md).
  ``objective="multinomial"`` keeps the ham/spam/phish model.
* **Calibration by temperature.** One scalar fitted on the grouped out-of-fold logits: it keeps
  the ranking, makes the probabilities honest, and is a number in JSON rather than an object.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mailsift.config.schema import LimitSettings
from mailsift.ml.corpus import HAM_RATE_EXCEPTIONS, LABELS, LabelledSource, group_of, iter_source
from mailsift.ml.features import FEATURE_VERSION, TEXT_PREFIXES, extract
from mailsift.ml.model import LinearModel

#: The merged class of the binary objective (spam and phish against ham).
THREAT = "threat"

__all__ = [
    "Example",
    "FeatureTable",
    "TrainOptions",
    "TrainReport",
    "every_source_threshold",
    "extract_examples",
    "fit",
    "group_normalize",
    "grouped_oof",
    "ham_thresholds",
    "source_folds",
    "train_model",
    "vectorize",
]


@dataclass(frozen=True, slots=True)
class Example:
    source: str
    label: str
    features: Mapping[str, float]
    #: the source's group (:data:`mailsift.ml.corpus.SOURCE_GROUPS`); empty = the source's
    group: str = ""

    @property
    def held_out_as(self) -> str:
        """What is held out together with this example: its group."""
        return self.group or group_of(self.source)


@dataclass(frozen=True, slots=True)
class TrainOptions:
    c: float = 4.0
    min_sources: int = 2
    min_messages: int = 3
    # The 50,000 most frequent shared features rank held-out mail as well as 150,000 did
    # (docs/model-card.md), and the smaller vocabulary makes scan-time look-ups cheaper.
    max_features: int = 50_000
    #: ``None``: hold out one source group at a time for calibration and the reported metrics
    #: (what a new organisation's mail is to the model); a number: that many grouped folds
    folds: int | None = None
    max_iter: int = 300
    classes: tuple[str, ...] = LABELS
    objective: Literal["threat", "multinomial"] = "threat"

    def target(self, label: str) -> str:
        """The class a message of ``label`` is trained as."""
        if self.objective == "threat":
            return "ham" if label == "ham" else THREAT
        return label

    @property
    def targets(self) -> tuple[str, ...]:
        return ("ham", THREAT) if self.objective == "threat" else self.classes


@dataclass(frozen=True)
class TrainReport:
    """Out-of-fold (source-grouped) metrics and what the model was trained on."""

    sources: Mapping[str, Mapping[str, Any]]
    metrics: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _features_of(raw: bytes, limits: LimitSettings | None) -> dict[str, float]:
    from mailsift.parsing import parse_message

    return extract(parse_message(raw, limits))


def _chunk_features(chunk: list[bytes]) -> list[dict[str, float]]:
    return [_features_of(raw, None) for raw in chunk]


def extract_examples(sources: Sequence[LabelledSource], cap: int = 0, workers: int = 1,
                     progress: Callable[[str, int], None] | None = None) -> list[Example]:
    """Parse and featurise every (capped) message of ``sources``; ``workers`` processes."""
    out: list[Example] = []
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        for source in sources:
            raws = [raw for _, raw in iter_source(source, cap)]
            if pool is None:
                feats = _chunk_features(raws)
            else:
                size = max(16, len(raws) // (workers * 8) + 1)
                chunks = [raws[i:i + size] for i in range(0, len(raws), size)]
                feats = [f for part in pool.map(_chunk_features, chunks) for f in part]
            out.extend(Example(source.name, source.label, f, source.group) for f in feats)
            if progress is not None:
                progress(source.name, len(feats))
    finally:
        if pool is not None:
            pool.shutdown()
    return out


class FeatureTable:
    """All examples as one raw sparse matrix, so folds only select rows and columns.

    Columns are every feature seen in at least ``min_messages`` messages; per-source document
    frequencies let each fold choose its vocabulary (``min_sources``) from its own training
    sources alone, without re-reading any message.
    """

    def __init__(self, examples: Sequence[Example], options: TrainOptions) -> None:
        self.examples = examples
        self.options = options
        doc_freq: Counter[str] = Counter()
        for ex in examples:
            doc_freq.update(ex.features.keys())
        self.names = sorted(n for n, df in doc_freq.items() if df >= options.min_messages)
        index = {n: i for i, n in enumerate(self.names)}
        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        for ex in examples:
            for n, v in ex.features.items():
                col = index.get(n)
                if col is not None:
                    indices.append(col)
                    data.append(v)
            indptr.append(len(indices))
        self.matrix = sparse.csr_matrix(
            (np.asarray(data, dtype=np.float64), indices, indptr),
            shape=(len(examples), len(self.names)))
        self.text = np.array([n.startswith(TEXT_PREFIXES) for n in self.names], dtype=bool)
        self.sources = sorted({ex.source for ex in examples})
        self.source_of = np.array([self.sources.index(ex.source) for ex in examples])
        #: held-out groups (an organisation or collection, several sources at times)
        self.groups = sorted({ex.held_out_as for ex in examples})
        self.group_of = np.array([self.groups.index(ex.held_out_as) for ex in examples])
        present = self.matrix.copy()
        present.data[:] = 1.0
        # rows: sources, columns: features -> in how many messages of that source it occurs
        onehot = sparse.csr_matrix((np.ones(len(examples)), (self.source_of,
                                    np.arange(len(examples)))),
                                   shape=(len(self.sources), len(examples)))
        self.source_df = np.asarray((onehot @ present).todense(), dtype=np.float32)

    def vocabulary(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Columns kept when training on ``rows``: common enough, in enough sources."""
        used = np.unique(self.source_of[rows])
        df = self.source_df[used]
        doc_freq = df.sum(axis=0)
        n_sources = (df > 0).sum(axis=0)
        ok = np.flatnonzero((doc_freq >= self.options.min_messages)
                            & (n_sources >= self.options.min_sources))
        if len(ok) > self.options.max_features:
            # most frequent first; ties broken by name order (columns are sorted by name)
            order = np.lexsort((ok, -doc_freq[ok]))
            ok = np.sort(ok[order[:self.options.max_features]])
        return ok

    def fit(self, rows: npt.NDArray[np.int64], name: str = "model", temperature: float = 1.0,
            metadata: Mapping[str, Any] | None = None) -> LinearModel:
        from sklearn.linear_model import LogisticRegression

        options = self.options
        cols = self.vocabulary(rows)
        examples = [self.examples[int(i)] for i in rows]
        targets = [options.target(ex.label) for ex in examples]
        present = [c for c in options.targets if c in set(targets)]
        if "ham" not in present or len(present) < 2:
            raise ValueError(f"training needs ham and at least one threat label, got {present}")
        x = group_normalize(self.matrix[rows][:, cols], self.text[cols])
        y = np.array([present.index(t) for t in targets])
        clf = LogisticRegression(C=options.c, max_iter=options.max_iter, tol=1e-4)
        clf.fit(x, y, sample_weight=_weights(examples, options.target))
        coef = np.zeros((len(cols), len(present)), dtype=np.float32)
        intercept = np.zeros(len(present), dtype=np.float32)
        if len(present) == 2:
            # sklearn keeps one column for two classes: logit(class 1) - logit(class 0).
            coef[:, 1] = clf.coef_[0]
            intercept[1] = clf.intercept_[0]
        else:
            coef[:] = clf.coef_.T
            intercept[:] = clf.intercept_
        return LinearModel(name=name, classes=tuple(present),
                           vocabulary=tuple(self.names[int(c)] for c in cols),
                           coef=coef, intercept=intercept, temperature=temperature,
                           feature_version=FEATURE_VERSION, metadata=dict(metadata or {}))

    def logits(self, model: LinearModel, rows: npt.NDArray[np.int64],
               classes: Sequence[str]) -> npt.NDArray[np.float64]:
        """Logits of ``model`` for ``rows``, in ``classes`` order (absent classes: -30)."""
        x = vectorize([self.examples[int(i)] for i in rows], model.index)
        fold = model.predict_logits_batch(x)
        out = np.full((len(rows), len(classes)), -30.0)
        for ci, cls in enumerate(classes):
            if cls in model.classes:
                out[:, ci] = fold[:, model.classes.index(cls)]
        return out


def vectorize(examples: Sequence[Example] | Sequence[Mapping[str, float]],
              index: Mapping[str, int]) -> sparse.csr_matrix:
    """Rows normalised over known features, per group, as :meth:`LinearModel.logits` does."""
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for ex in examples:
        feats = ex.features if isinstance(ex, Example) else ex
        for n, v in feats.items():
            col = index.get(n)
            if col is not None:
                indices.append(col)
                data.append(v)
        indptr.append(len(indices))
    raw = sparse.csr_matrix((np.asarray(data, dtype=np.float64), indices, indptr),
                            shape=(len(examples), len(index)))
    text = np.zeros(len(index), dtype=bool)
    for n, col in index.items():
        text[col] = n.startswith(TEXT_PREFIXES)
    return group_normalize(raw, text)


def group_normalize(x: sparse.csr_matrix, text: npt.NDArray[np.bool_]) -> sparse.csr_matrix:
    """Each row's word columns (``text``) and its other columns each scaled to length
    1/sqrt(2) (a group a row does not have stays empty). One global L2 norm let a long body's
    hundreds of word features shrink the few link and structure features of the same message;
    per group, both keep the same weight whatever the length of the text."""
    x = sparse.csr_matrix(x, dtype=np.float64)
    flags = text.astype(np.float64)
    squares = x.multiply(x).tocsr()
    text_norm = np.sqrt(np.asarray(squares @ flags).ravel())
    other_norm = np.sqrt(np.asarray(squares @ (1.0 - flags)).ravel())
    row_of = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    denom = np.where(text[x.indices], text_norm[row_of], other_norm[row_of])
    denom[denom == 0] = 1.0
    out = x.copy()
    out.data = x.data / denom / math.sqrt(2.0)
    return out


def _weights(examples: Sequence[Example], target: Callable[[str], str] | None = None
             ) -> npt.NDArray[np.float64]:
    """Sample weights: each class (``target`` of the label) totals the same, and inside a class
    each source an equal share."""
    cls = target or (lambda label: label)
    per_source = Counter(ex.source for ex in examples)
    sources_per_class: dict[str, set[str]] = defaultdict(set)
    for ex in examples:
        sources_per_class[cls(ex.label)].add(ex.source)
    n_classes = len(sources_per_class)
    w = np.empty(len(examples))
    for i, ex in enumerate(examples):
        # each class totals len(examples)/n_classes; inside it each source an equal share
        class_share = len(examples) / n_classes
        w[i] = class_share / len(sources_per_class[cls(ex.label)]) / per_source[ex.source]
    return w


def fit(examples: Sequence[Example], options: TrainOptions, name: str = "model",
        temperature: float = 1.0, metadata: Mapping[str, Any] | None = None) -> LinearModel:
    """One logistic regression on ``examples`` (no calibration, no held-out data)."""
    table = FeatureTable(examples, options)
    return table.fit(np.arange(len(examples)), name, temperature, metadata)


def grouped_oof(table: FeatureTable, folds: int | None = None
                ) -> tuple[npt.NDArray[np.float64], list[str]]:
    """Out-of-fold logits (rows follow the table) with whole source groups held out per fold.

    ``folds=None`` holds out one group at a time (leave-one-group-out).
    """
    examples = table.examples
    present = {table.options.target(ex.label) for ex in examples}
    classes = [c for c in table.options.targets if c in present]
    logits = np.zeros((len(examples), len(classes)))
    for test_idx in source_folds(table, folds):
        train_idx = np.setdiff1d(np.arange(len(examples)), test_idx)
        model = table.fit(train_idx)
        logits[test_idx] = table.logits(model, test_idx, classes)
    return logits, classes


def source_folds(table: FeatureTable, folds: int | None) -> list[npt.NDArray[np.int64]]:
    """Row indices of each held-out fold. A fold holds out whole *groups* of sources (an
    organisation with its inbox and sent mail, a corpus with its ham and spam), never part of
    one; every fold keeps some training data of every label where possible (a phish group is
    never held out together with the only other one)."""
    n_groups = len(table.groups)
    if folds is None or folds >= n_groups:
        return [np.flatnonzero(table.group_of == g) for g in range(n_groups)]
    labels_of: dict[str, set[str]] = defaultdict(set)
    for ex in table.examples:
        labels_of[ex.held_out_as].add(ex.label)
    # deal groups round-robin by their rarest label (phish first), so each fold holds out a mix
    rarity = {label: sum(1 for ls in labels_of.values() if label in ls)
              for label in table.options.classes}
    def key(group: str) -> tuple[int, str]:
        return (min(rarity.get(label, 0) for label in labels_of[group]), group)
    assignment = {group: i % folds for i, group in enumerate(sorted(table.groups, key=key))}
    out = []
    for k in range(folds):
        ids = [table.groups.index(g) for g, f in assignment.items() if f == k]
        rows = np.flatnonzero(np.isin(table.group_of, ids))
        if len(rows):
            out.append(rows)
    return out


def softmax(logits: npt.NDArray[np.float64], temperature: float = 1.0
            ) -> npt.NDArray[np.float64]:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


def fit_temperature(logits: npt.NDArray[np.float64], y: npt.NDArray[np.int64],
                    weights: npt.NDArray[np.float64]) -> float:
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        p = softmax(logits, math.exp(log_t))[np.arange(len(y)), y]
        return float(-(weights * np.log(np.clip(p, 1e-12, 1.0))).sum() / weights.sum())

    result = minimize_scalar(nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return round(math.exp(float(result.x)), 4)


def oof_metrics(examples: Sequence[Example], probs: npt.NDArray[np.float64],
                classes: Sequence[str], target: Callable[[str], str] | None = None
                ) -> dict[str, Any]:
    """Per held-out source: how often the model's top class was right (the class its label is
    trained as), and the share with P(threat) >= 0.5."""
    cls = target or (lambda label: label)
    per: dict[str, dict[str, Any]] = {}
    threat = 1.0 - probs[:, classes.index("ham")]
    for source in dict.fromkeys(ex.source for ex in examples):
        idx = [i for i, ex in enumerate(examples) if ex.source == source]
        label = examples[idx[0]].label
        top = [classes[int(k)] for k in probs[idx].argmax(axis=1)]
        is_threat = threat[idx] >= 0.5
        per[source] = {
            "label": label,
            "messages": len(idx),
            "accuracy": round(sum(t == cls(label) for t in top) / len(idx), 4),
            "threat_rate_at_0.5": round(float(is_threat.mean()), 4),
        }
    ham_rows = [i for i, ex in enumerate(examples) if ex.label == "ham"]
    ham = threat[ham_rows]
    by_source: dict[str, list[float]] = defaultdict(list)
    for i in ham_rows:
        by_source[examples[i].source].append(float(threat[i]))
    return {"per_source_out_of_fold": per,
            "ham_threat_thresholds": ham_thresholds(ham, OOF_HAM_RATES),
            "ham_threshold_every_source": {
                str(rate): every_source_threshold(by_source, rate, HAM_RATE_EXCEPTIONS)
                for rate in OOF_HAM_RATES}}


def every_source_threshold(sources: Mapping[str, Sequence[float]], rate: float,
                           exceptions: Mapping[str, float] | None = None) -> float:
    """The lowest p_threat, rounded *up* to two decimals, at which every ham source (its name ->
    its held-out scores) has at most ``rate`` of its messages at or above it (``exceptions``:
    another rate for a named source). This is how the junk band of ``[ml] bands`` is chosen:
    from ham alone, and for the worst source, because a new organisation's mail is one source
    the model has never seen, not an average."""
    bound = 0.0
    for name, scores in sources.items():
        ranked = sorted(scores, reverse=True)
        allowed = int((exceptions or {}).get(name, rate) * len(ranked) + 1e-9)
        if allowed < len(ranked):
            bound = max(bound, ranked[allowed])
    return min(1.0, round(math.floor(bound * 100) / 100 + 0.01, 2))


#: Shares of held-out ham for which :func:`ham_thresholds` reports a p_threat threshold.
OOF_HAM_RATES = (0.0025, 0.005, 0.0075, 0.01)


def ham_thresholds(ham_threat: npt.NDArray[np.float64], rates: Sequence[float]
                   ) -> dict[str, float]:
    """For each rate r: the lowest p_threat at which at most r of ``ham_threat`` is at or above
    it. This is how ``[ml] bands`` are chosen (docs/model-card.md): from ham alone, so picking a
    threshold never looks at how much of any held-out threat it catches."""
    out: dict[str, float] = {}
    ranked = np.sort(np.asarray(ham_threat, dtype=np.float64))[::-1]
    for rate in rates:
        allowed = int(rate * len(ranked) + 1e-9)
        bound = float(ranked[allowed]) if allowed < len(ranked) else 0.0
        # rounded up, so the threshold stays strictly above the ham score it must exceed
        out[str(rate)] = min(1.0, math.floor(bound * 10_000) / 10_000 + 0.0001)
    return out


def train_model(examples: Sequence[Example], options: TrainOptions, name: str,
                sources: Iterable[LabelledSource] = (), calibrate: bool = True
                ) -> tuple[LinearModel, TrainReport]:
    """Grouped out-of-fold calibration and metrics, then the final fit on everything."""
    started = time.perf_counter()
    counts = Counter(ex.source for ex in examples)
    info = {s.name: {"label": s.label, "group": s.group, "messages_used": counts.get(s.name, 0),
                     "licence": s.licence, "file": s.path.name} for s in sources}
    temperature = 1.0
    metrics: dict[str, Any] = {}
    table = FeatureTable(examples, options)
    if calibrate and len(counts) >= 2:
        logits, classes = grouped_oof(table, options.folds)
        y = np.array([classes.index(options.target(ex.label)) for ex in examples])
        temperature = fit_temperature(logits, y, _weights(examples, options.target))
        metrics = oof_metrics(examples, softmax(logits, temperature), classes, options.target)
    meta = {
        # SOURCE_DATE_EPOCH pins the date for byte-identical rebuilds (reproducible-builds.org)
        "trained_at": time.strftime("%Y-%m-%d", time.gmtime(
            int(os.environ.get("SOURCE_DATE_EPOCH", time.time())))),
        "training_sources": info,
        # the model inherits these sources' terms: never shipped (docs/model-card.md)
        "noncommercial_sources": sorted(s.name for s in sources if s.noncommercial),
        "options": {"c": options.c, "min_sources": options.min_sources,
                    "min_messages": options.min_messages, "max_features": options.max_features,
                    "folds": options.folds, "objective": options.objective},
        "metrics": metrics,
    }
    model = table.fit(np.arange(len(examples)), name, temperature, meta)
    return model, TrainReport(info, metrics, time.perf_counter() - started)
