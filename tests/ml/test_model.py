"""The model artifact: safe format, versioned, verified on load, explains its scores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mailsift.core.errors import ConfigError
from mailsift.ml.features import extract
from mailsift.ml.model import LinearModel, load_model, save_model
from mailsift.parsing import parse_message
from mailsift.testing.messages import make_message


def _tiny() -> LinearModel:
    coef = np.array([[0.0, 0.0, 2.0], [0.0, 1.5, 0.0], [1.0, 0.0, 0.0]], dtype=np.float32)
    return LinearModel(name="tiny", classes=("ham", "spam", "phish"),
                       vocabulary=("w:password", "w:cheap", "w:meeting"), coef=coef,
                       intercept=np.zeros(3, dtype=np.float32))


def test_roundtrip_keeps_scores_and_version(tmp_path: Path) -> None:
    model = _tiny()
    path = save_model(model, tmp_path / "tiny.json")
    loaded = load_model(path)
    assert loaded.version == model.version
    feats = {"w:password": 1.0, "w:unknown": 3.0}
    assert loaded.predict(feats).probabilities == model.predict(feats).probabilities
    meta = json.loads(path.read_text())
    assert meta["version"] == model.version and meta["format"] == "mailsift-linear/1"


def test_saving_twice_gives_identical_bytes(tmp_path: Path) -> None:
    a = save_model(_tiny(), tmp_path / "a" / "m.json")
    b = save_model(_tiny(), tmp_path / "b" / "m.json")
    assert a.with_suffix(".npz").read_bytes() == b.with_suffix(".npz").read_bytes()


def test_edited_weights_are_refused(tmp_path: Path) -> None:
    path = save_model(_tiny(), tmp_path / "tiny.json")
    other = _tiny()
    other.coef[0, 2] = 9.0
    object.__setattr__(other, "name", "tiny")
    save_model(LinearModel(name="tiny", classes=other.classes, vocabulary=other.vocabulary,
                           coef=other.coef, intercept=other.intercept), tmp_path / "x.json")
    shutil.copy(tmp_path / "x.npz", path.with_suffix(".npz"))
    with pytest.raises(ConfigError, match="does not match"):
        load_model(path)


def test_pickled_arrays_are_refused(tmp_path: Path) -> None:
    path = save_model(_tiny(), tmp_path / "tiny.json")
    np.savez(path.with_suffix(".npz"), coef=np.array([object()], dtype=object),
             intercept=np.zeros(3), vocabulary=np.zeros(1, dtype=np.uint8))
    with pytest.raises(ConfigError):
        load_model(path)


def test_feature_version_mismatch_is_refused(tmp_path: Path) -> None:
    path = save_model(_tiny(), tmp_path / "tiny.json")
    meta = json.loads(path.read_text())
    meta["feature_version"] = "0"
    path.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="retrain"):
        load_model(path)


def test_prediction_names_the_features_that_pushed_it() -> None:
    pred = _tiny().predict({"w:password": 2.0, "w:meeting": 1.0}, top=3)
    assert pred.p("phish") > pred.p("spam")
    assert pred.p("threat") == pytest.approx(1 - pred.p("ham"))
    assert pred.contributions["phish"][0][0] == "w:password"
    assert all(w > 0 for _, w in pred.contributions["phish"])


def test_a_scored_message_is_explained_without_scoring_it_again() -> None:
    model = _tiny()
    features = {"w:password": 2.0, "w:meeting": 1.0}
    scored = model.score(features)
    plain, explained = scored.prediction(), scored.prediction(3)
    assert plain.contributions == {}
    assert explained == model.predict(features, top=3)
    assert plain.probabilities == explained.probabilities


def test_synthetic_model_separates_threats(synthetic_model_path: Path) -> None:
    import random

    from mailsift.ml.synthetic import synthetic_message

    model = load_model(synthetic_model_path)
    rng = random.Random(99)
    for label in ("ham", "phish", "spam"):
        for n in range(5):
            raw = synthetic_message(label, rng, recipient="new@unseen.example", n=n)
            pred = model.predict(extract(parse_message(raw)))
            if label == "ham":
                assert pred.p("threat") < 0.5
            else:
                assert pred.p("threat") > 0.5


def test_shipped_model_loads_and_scores_a_sample() -> None:
    from mailsift.ml.model import shipped_model_path

    path = shipped_model_path()
    size = path.stat().st_size + path.with_suffix(".npz").stat().st_size
    assert size < 25 * 1024 * 1024
    model = load_model(path)
    meta = model.metadata
    assert meta["training_sources"], "the card data must list the training sources"
    assert all(s["licence"] for s in meta["training_sources"].values())
    raw = make_message(subject="Your mailbox is full - verify your account now",
                       text=None,
                       html='<p>Your account will be suspended. Verify your password now.</p>'
                            '<a href="http://203.0.113.9/owa/login">Verify now</a>')
    phish = model.predict(extract(parse_message(raw)))
    ham = model.predict(extract(parse_message(make_message(
        subject="Re: patch v2 for the arm64 build",
        text="Thanks, I reviewed the patch. The build passes on arm64 now; merging tomorrow.\n"))))
    assert phish.p("threat") > ham.p("threat")
