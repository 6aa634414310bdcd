"""The ml detector: bands -> findings with probabilities, model version and evidence."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mailsift.config.ml import MlBand, MlSettings
from mailsift.config.schema import DetectorSettings, Settings
from mailsift.core.context import ScanContext
from mailsift.core.envelope import Envelope
from mailsift.core.errors import ConfigError
from mailsift.core.findings import ArtifactState, Stage
from mailsift.detectors.base import Services
from mailsift.detectors.ml import MlDetector, build, cached_model
from mailsift.ml.model import Prediction
from mailsift.ml.synthetic import synthetic_message, train_synthetic_model
from mailsift.parsing import parse_message
from mailsift.pipeline.build import ScanOptions, build_pipeline


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_synthetic_model(tmp_path_factory.mktemp("mldet"))


def _phish() -> bytes:
    return synthetic_message("phish", random.Random(5), recipient="x@corp.example", n=1)


def _ham() -> bytes:
    return synthetic_message("ham", random.Random(5), recipient="x@corp.example", n=1)


def test_bands_pick_the_heaviest_per_family(model_path: Path) -> None:
    settings = MlSettings(bands=(
        MlBand(score="phish", min_probability=0.9, family="phish", weight=12.0),
        MlBand(score="phish", min_probability=0.5, family="phish", weight=6.0),
        MlBand(score="threat", min_probability=0.5, family="spam", weight=6.0),
    ))
    det = MlDetector(cached_model(model_path), settings)
    pred = Prediction({"ham": 0.02, "spam": 0.18, "phish": 0.80},
                      {"phish": (("w:password", 1.2),), "spam": (("w:cheap", 0.4),)})
    findings = {f.code: f for f in det.findings(pred)}
    assert set(findings) == {"ML_PHISH", "ML_SPAM"}
    phish = findings["ML_PHISH"]
    assert phish.weight == 6.0 and phish.category == "phish"
    assert phish.evidence[0].startswith("p_phish=0.800")
    assert "band: p_phish >= 0.5" in phish.evidence
    assert "w:password (+1.20)" in phish.evidence
    assert phish.artifact == "model:synthetic" and phish.version == det.model.version
    assert det.findings(Prediction({"ham": 0.99, "spam": 0.005, "phish": 0.005})) == []


def test_detector_on_messages(model_path: Path) -> None:
    det = MlDetector(cached_model(model_path), MlSettings(model_path=str(model_path)))
    assert det.name == "ml" and det.stage is Stage.ML
    phish = det.run(ScanContext(parse_message(_phish()), Envelope(rcpt_to=("x@corp.example",))))
    assert phish and all(f.code in det.codes for f in phish)
    assert det.run(ScanContext(parse_message(_ham()))) == []
    assert det.versions() == {"model:synthetic": det.model.version}


def test_findings_name_the_features_only_when_a_band_fires(model_path: Path) -> None:
    det = MlDetector(cached_model(model_path), MlSettings(model_path=str(model_path)))
    msg = parse_message(_phish())
    found = det.run(ScanContext(msg))
    assert found and any("(+" in e for f in found for e in f.evidence)  # explained
    # the same probabilities as a one-pass prediction with contributions
    assert found[0].evidence[0] == det.findings(det.predict(msg))[0].evidence[0]


def test_shadow_state_is_carried(model_path: Path) -> None:
    det = MlDetector(cached_model(model_path), MlSettings(state="shadow"))
    findings = det.run(ScanContext(parse_message(_phish())))
    assert findings and all(f.state is ArtifactState.SHADOW and not f.acts for f in findings)


def test_model_is_loaded_once(model_path: Path) -> None:
    assert cached_model(model_path) is cached_model(model_path)


def test_disabled_but_listed_fails_startup(model_path: Path) -> None:
    settings = Settings(ml=MlSettings(enabled=False, model_path=str(model_path)))
    with pytest.raises(ConfigError, match="enabled"):
        build(settings, Services())


def test_missing_model_fails_startup(tmp_path: Path) -> None:
    settings = Settings(ml=MlSettings(model_path=str(tmp_path / "nope.json")))
    with pytest.raises(ConfigError):
        build(settings, Services())


def test_full_pipeline_uses_the_model(model_path: Path) -> None:
    settings = Settings(detectors=DetectorSettings(enabled=("parse", "ml")),
                        ml=MlSettings(model_path=str(model_path)))
    pipeline = build_pipeline(settings, ScanOptions(offline=True))
    result = pipeline.scan(_phish(), Envelope(rcpt_to=("x@corp.example",)))
    codes = {f.code for f in result.findings}
    assert codes & {"ML_PHISH", "ML_SPAM"}
    assert result.verdict.category.value != "clean"
    assert result.versions["model:synthetic"] == cached_model(model_path).version
    clean = pipeline.scan(_ham(), Envelope(rcpt_to=("x@corp.example",)))
    assert clean.verdict.category.value == "clean"


def test_receiver_headers_do_not_change_the_score(model_path: Path) -> None:
    det = MlDetector(cached_model(model_path), MlSettings())
    body = _phish().split(b"\r\n", 1)[1]  # drop the synthetic Received line
    honeypot = (b"X-MS-Exchange-Organization-SCL: 9\r\nAuthentication-Results: x; dkim=fail\r\n"
                b"ARC-Seal: i=1; cv=none\r\nReturn-Path: <a@b.example>\r\n")
    lists = b"List-Id: <dev.lists.example.org>\r\nX-BeenThere: dev@lists.example.org\r\n"
    a = det.predict(parse_message(honeypot + body)).probabilities
    b = det.predict(parse_message(lists + body)).probabilities
    assert a == b


def test_binary_threat_model_junks_and_explains(tmp_path: Path) -> None:
    path = train_synthetic_model(tmp_path, objective="threat")
    det = MlDetector(cached_model(path), MlSettings(model_path=str(path)))
    assert det.model.classes == ("ham", "threat")
    found = det.run(ScanContext(parse_message(_phish())))
    # no phish class: the spam family, and in the phish family only the threat-score band that
    # backs other phishing evidence (never ML_PHISH, a phishing judgement it cannot make)
    assert sorted(f.code for f in found) == ["ML_SPAM", "ML_THREAT_PHISH_EVIDENCE"]
    assert all(any("(+" in e for e in f.evidence) for f in found)
    # only the probabilities the model has (no "p_phish=0.000, p_spam=0.000")
    assert all(f.evidence[0].startswith("p_threat=") for f in found)
    assert {f.weight for f in found if f.code == "ML_THREAT_PHISH_EVIDENCE"} <= {2.0}
    assert det.run(ScanContext(parse_message(_ham()))) == []
