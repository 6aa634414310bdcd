"""Training: source-grouped splits, source-shared vocabulary, calibration."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from mailsift.ml.corpus import LabelledSource, group_of
from mailsift.ml.synthetic import make_corpus
from mailsift.ml.train import (
    Example,
    FeatureTable,
    TrainOptions,
    _weights,
    every_source_threshold,
    extract_examples,
    ham_thresholds,
    source_folds,
)


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
    options = TrainOptions(c=1.0, folds=3, max_iter=50, objective="multinomial")
    model, report = train_model(examples, options, "t", sources)
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


def test_ham_thresholds_keep_the_ham_share_at_or_under_the_rate() -> None:
    ham = np.linspace(0.0, 0.999, 1000)  # 1000 held-out ham scores
    out = ham_thresholds(ham, (0.005, 0.01))
    for rate, threshold in ((0.005, out["0.005"]), (0.01, out["0.01"])):
        assert (ham >= threshold).mean() <= rate
        assert (ham >= threshold - 0.002).mean() > rate  # the lowest such threshold
    assert ham_thresholds(np.array([0.2, 0.3]), (0.001,))["0.001"] > 0.3  # no ham may pass


def test_threat_objective_is_ham_against_everything_else(tmp_path: Path) -> None:
    from mailsift.ml.features import extract
    from mailsift.ml.synthetic import synthetic_message
    from mailsift.ml.train import train_model
    from mailsift.parsing import parse_message

    sources = make_corpus(tmp_path, per_source=12)
    examples = extract_examples(sources)
    options = TrainOptions(c=1.0, folds=3, max_iter=50)
    assert options.objective == "threat"  # the default
    model, report = train_model(examples, options, "t", sources)
    assert model.classes == ("ham", "threat")
    assert model.metadata["options"]["objective"] == "threat"
    assert "ham_threat_thresholds" in report.metrics
    rng = random.Random(3)
    phish = model.predict(extract(parse_message(synthetic_message("phish", rng, n=1))), top=3)
    ham = model.predict(extract(parse_message(synthetic_message("ham", rng, n=1))))
    assert phish.p("threat") > 0.5 > ham.p("threat")
    assert phish.p("phish") == 0.0  # no phish class: phish bands never fire on their own
    assert phish.contributions["threat"]  # explained against ham


def test_class_weights_balance_ham_against_the_merged_threat_class() -> None:
    ex = [Example("h", "ham", {}) for _ in range(10)]
    ex += [Example("s", "spam", {}) for _ in range(30)]
    ex += [Example("p", "phish", {}) for _ in range(5)]
    w = _weights(ex, TrainOptions().target)
    assert abs(w[:10].sum() - w[10:].sum()) < 1e-9  # ham weighs as much as all threats
    assert abs(w[10:40].sum() - w[40:].sum()) < 1e-9  # each threat source an equal share


def test_scan_time_scores_equal_training_time_scores(tmp_path: Path) -> None:
    from mailsift.ml.train import fit, vectorize

    examples = extract_examples(make_corpus(tmp_path, per_source=8))
    model = fit(examples, TrainOptions(c=1.0, max_iter=50, min_messages=1))
    batch = model.predict_logits_batch(vectorize(examples, model.index))
    for i, ex in enumerate(examples[::7]):
        z, _, _ = model.logits(ex.features)
        assert np.allclose(z, batch[i * 7], atol=1e-4)


def test_words_and_structure_are_normalised_apart() -> None:
    from scipy import sparse

    from mailsift.ml.train import group_normalize

    # a long text (many words) and one structure feature: the structure feature keeps its
    # share instead of shrinking with the length of the text
    x = sparse.csr_matrix(np.array([[1.0] * 100 + [1.0], [1.0] * 4 + [0.0] * 96 + [1.0]]))
    out = group_normalize(x, np.array([True] * 100 + [False])).toarray()
    assert np.allclose(out[:, -1], 1 / np.sqrt(2))
    assert np.allclose((out[:, :100] ** 2).sum(axis=1), 0.5)


def test_an_organisation_is_held_out_as_a_whole() -> None:
    # Enron's inbox and its sent mail are one organisation: a fold that held out one of them
    # and trained on the other would learn the company from its twin (issue 16)
    assert group_of("enron_business") == group_of("enron_sent") == "enron"
    assert group_of("csdmc2010_ham") == group_of("spamassassin_spam") == "spamassassin"
    assert group_of("ml_ksummit") == "ml_ksummit"
    ex = []
    for src, group, label in (("inbox", "acme", "ham"), ("sent", "acme", "ham"),
                              ("list", "", "ham"), ("pot", "", "phish"), ("old", "", "phish")):
        ex += [Example(src, label, {"w:x": 1.0, f"w:{src}{i}": 1.0}, group) for i in range(3)]
    table = FeatureTable(ex, TrainOptions(min_messages=1))
    assert table.groups == ["acme", "list", "old", "pot"]
    held = [{table.examples[int(i)].source for i in rows} for rows in source_folds(table, None)]
    assert {"inbox", "sent"} in held and {"inbox"} not in held
    for rows in source_folds(table, 2):  # grouped folds never split a group either
        sources = {table.examples[int(i)].source for i in rows}
        assert ("inbox" in sources) == ("sent" in sources)


def test_the_junk_band_is_set_by_the_worst_ham_source() -> None:
    lists = [0.01] * 999 + [0.95]  # one list message in 1000 scores high
    business = [0.1] * 190 + [0.97] * 10  # 5% of a business mailbox scores high
    brand = [0.2] * 90 + [0.985] * 10
    # at 0.5% per source, the business mail decides (the list's 0.1% is allowed)
    assert every_source_threshold({"lists": lists, "business": business}, 0.005) == 0.98
    # brand mail with its own allowance (10%): its high tenth no longer decides
    assert every_source_threshold({"lists": lists, "brand": brand}, 0.005,
                                  {"brand": 0.10}) == 0.21
    assert every_source_threshold({"lists": lists, "brand": brand}, 0.005) == 0.99
