"""Linear model vs MiniLM embedding + linear head, on the same held-out sources.

Both are trained leave-one-source-out on the same capped sample and judged on the held-out
source only, model alone (the rest of the pipeline is identical for both, so it cannot change the
comparison). Reported per model: threat accuracy at 0.5 per source, ROC AUC, the catch rate at
the threshold that keeps every ham source at or under the target false-positive rate, and the
cost in milliseconds per message on this machine (one thread).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from mailsift.eval.metrics import choose_threshold
from mailsift.eval.runner import Record
from mailsift.ml.corpus import LabelledSource, iter_source
from mailsift.ml.features import extract
from mailsift.ml.train import Example, FeatureTable, TrainOptions, _weights, softmax

__all__ = ["compare_models"]


def _records(sources: Sequence[str], labels: Sequence[str], p_threat: npt.NDArray[np.float64]
             ) -> list[Record]:
    return [Record(s, lab, str(i), "", "", 0.0, 0.0, float(p), 0.0)
            for i, (s, lab, p) in enumerate(zip(sources, labels, p_threat, strict=True))]


def _summary(name: str, sources: Sequence[str], labels: Sequence[str],
             p_threat: npt.NDArray[np.float64], ms: float, target_fpr: float) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    y = np.array([lab != "ham" for lab in labels])
    correct = (p_threat >= 0.5) == y
    per_source = {}
    for src in dict.fromkeys(sources):
        idx = [i for i, s in enumerate(sources) if s == src]
        per_source[src] = round(float(correct[idx].mean()), 4)
    ham_sources = [s for s, lab in zip(sources, labels, strict=True) if lab == "ham"]
    threat_sources = [s for s, lab in zip(sources, labels, strict=True) if lab != "ham"]
    sel = choose_threshold(_records(sources, labels, p_threat), target_fpr)
    return {
        "model": name,
        "ms_per_message": round(ms, 3),
        "roc_auc": round(float(roc_auc_score(y, p_threat)), 5),
        "accuracy_at_0.5": round(float(correct.mean()), 4),
        "ham_flagged_at_0.5": round(float((p_threat[~y] >= 0.5).mean()), 4),
        "threats_caught_at_0.5": round(float((p_threat[y] >= 0.5).mean()), 4),
        "threshold_for_target": sel["threshold"],
        "catch_at_target": sel["catch_rate"],
        "per_source_accuracy": per_source,
        "sources": {"ham": len(set(ham_sources)), "threat": len(set(threat_sources))},
    }


def _embedding_loso(vectors: npt.NDArray[np.float32], examples: Sequence[Example]
                    ) -> npt.NDArray[np.float64]:
    from sklearn.linear_model import LogisticRegression

    sources = np.array([ex.source for ex in examples])
    classes = [c for c in ("ham", "spam", "phish") if any(ex.label == c for ex in examples)]
    y = np.array([classes.index(ex.label) for ex in examples])
    out = np.zeros(len(examples))
    for src in dict.fromkeys(sources.tolist()):
        test = sources == src
        train = ~test
        train_examples = [ex for ex, keep in zip(examples, train, strict=True) if keep]
        clf = LogisticRegression(C=4.0, max_iter=500)
        clf.fit(vectors[train], y[train], sample_weight=_weights(train_examples))
        probs = clf.predict_proba(vectors[test])
        ham_col = list(clf.classes_).index(0)
        out[test] = 1.0 - probs[:, ham_col]
    return out


def _linear_loso(examples: Sequence[Example]) -> npt.NDArray[np.float64]:
    table = FeatureTable(examples, TrainOptions())
    out = np.zeros(len(examples))
    for s in range(len(table.sources)):
        test = np.flatnonzero(table.source_of == s)
        train = np.flatnonzero(table.source_of != s)
        model = table.fit(train)
        probs = softmax(table.logits(model, test, model.classes))
        out[test] = 1.0 - probs[:, model.classes.index("ham")]
    return out


def compare_models(sources: Sequence[LabelledSource], cap: int, target_fpr: float = 0.001,
                   log: Callable[[str], None] | None = None) -> dict[str, Any]:
    from mailsift.ml.embedding import Embedder, embedding_text
    from mailsift.ml.model import load_model, shipped_model_path
    from mailsift.parsing import parse_message

    say = log or (lambda _m: None)
    embedder = Embedder(threads=1)
    shipped = load_model(shipped_model_path())  # only to time scoring at its real size
    examples: list[Example] = []
    texts: list[str] = []
    linear_s = 0.0
    for source in sources:
        for _, raw in iter_source(source, cap):
            msg = parse_message(raw)
            t = time.perf_counter()
            feats = extract(msg)
            shipped.predict(feats, top=5)
            linear_s += time.perf_counter() - t
            examples.append(Example(source.name, source.label, feats))
            texts.append(embedding_text(msg))
        say(f"compare: read {source.name}")
    t = time.perf_counter()
    vectors = embedder.embed(texts)
    embed_ms = (time.perf_counter() - t) * 1000 / max(len(texts), 1)
    t = time.perf_counter()
    for text in texts[:50]:
        embedder.embed([text], batch_size=1)
    embed_single_ms = (time.perf_counter() - t) * 1000 / max(min(len(texts), 50), 1)
    say("compare: embedded; fitting folds")
    names = [ex.source for ex in examples]
    labels = [ex.label for ex in examples]
    linear = _summary("linear (word/link/structure features + logistic regression)", names,
                      labels, _linear_loso(examples), linear_s * 1000 / len(examples),
                      target_fpr)
    embedding = _summary("MiniLM-L6 embedding + logistic regression", names, labels,
                         _embedding_loso(vectors, examples), embed_ms, target_fpr)
    embedding["ms_per_message_unbatched"] = round(embed_single_ms, 3)
    return {"mode": "model-only leave-one-source-out comparison", "messages": len(examples),
            "cap_per_source": cap, "target_fpr": target_fpr, "models": [linear, embedding]}
