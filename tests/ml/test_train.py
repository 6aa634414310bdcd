"""Training: source-grouped splits, source-shared vocabulary, calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mailsift.ml.corpus import LabelledSource
from mailsift.ml.synthetic import make_corpus
from mailsift.ml.train import Example, FeatureTable, TrainOptions, extract_examples, source_folds


def _examples() -> list[Example]:
    ex = []
    for src, label, words in (("a", "ham", "meeting"), ("b", "ham", "meeting"),
                              ("c", "phish", "password"), ("d", "phish", "password")):
        for i in range(5):
            feats = {f"w:{words}": 1.0, f"w:only_{src}": 1.0, f"w:n{i}": 1.0}
            ex.append(Example(src, label, feats))
    return ex


def test_vocabulary_keeps_only_features_of_several_sources() -> None:
    table = FeatureTable(_examples(), TrainOptions(min_messages=2, min_sources=2))
    cols = table.vocabulary(np.arange(20))
    names = {table.names[int(c)] for c in cols}
    assert "w:meeting" in names and "w:password" in names
    assert not any(n.startswith("w:only_") for n in names)  # one mailbox's quirk


def test_folds_hold_out_whole_sources() -> None:
    table = FeatureTable(_examples(), TrainOptions(min_messages=1))
    folds = source_folds(table, 2)
    for rows in folds:
        held = {table.examples[int(i)].source for i in rows}
        for src in held:
            assert sum(1 for e in table.examples if e.source == src) == \
                sum(1 for i in rows if table.examples[int(i)].source == src)
        # each fold keeps one source of every label for training
        labels = {table.examples[int(i)].label for i in rows}
        assert labels == {"ham", "phish"}
    assert len(source_folds(table, None)) == 4


def test_grouped_training_reports_per_source_metrics(tmp_path: Path) -> None:
    from mailsift.ml.train import train_model

    sources = make_corpus(tmp_path, per_source=12)
    examples = extract_examples(sources)
    model, report = train_model(examples, TrainOptions(c=1.0, folds=3, max_iter=50), "t",
                                sources)
    assert set(report.metrics["per_source_out_of_fold"]) == {s.name for s in sources}
    assert model.temperature > 0
    assert set(model.classes) == {"ham", "spam", "phish"}
    assert model.metadata["training_sources"]["phish_pot"]["licence"] == "licence: CC0"
    # receiver-side stamps of one source never become features
    assert not any("exchange" in n or "tenant" in n for n in model.vocabulary)


def test_cap_samples_evenly(tmp_path: Path) -> None:
    from mailsift.ml.corpus import iter_source

    (source,) = make_corpus(tmp_path, per_source=20, names=("ham_office",))
    ids = [i for i, _ in iter_source(source, cap=5)]
    assert len(ids) == 5
    assert ids[0] != "ham_office:0" or ids[-1].endswith(("16", "17", "18", "19"))
    assert isinstance(source, LabelledSource)
