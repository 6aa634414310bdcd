"""A retrained model goes through the same rollout as a rule pack: staged in shadow (its
findings recorded, never acting), gated, promoted, rolled back from its local copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.config.schema import Settings
from mailsift.core.errors import InputError
from mailsift.core.findings import ArtifactState
from mailsift.ml.synthetic import train_synthetic_model
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.rollout.robustness import ROBUSTNESS_SOURCE, robustness_cases
from mailsift.services.access import Principal
from mailsift.services.rollout import RolloutService
from mailsift.store.store import Store
from mailsift.testing.messages import make_message

pytestmark = pytest.mark.slow  # trains models and replays the known-good corpus

ADMIN = Principal("ops", "admin")


@pytest.fixture(scope="module")
def retrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_synthetic_model(tmp_path_factory.mktemp("retrain"))


def test_model_stage_shadow_promote_rollback(tmp_path: Path, retrained: Path) -> None:
    settings = Settings.model_validate({"store": {"data_dir": str(tmp_path)},
                                        "rollout": {"known_good": [], "recent_messages": 0,
                                                    "min_known_good": 0,
                                                    "robustness_set": False}})
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        dep = service.stage(ADMIN, str(retrained))
        assert (dep.kind, dep.state) == ("model", ArtifactState.SHADOW)
        assert Path(dep.path).is_file() and Path(dep.path).with_suffix(".npz").is_file()
        deps = {d.name: d for d in store.rollout.deployments("model")}
        assert deps["default"].state is ArtifactState.ACTIVE  # the baseline to return to

        pipeline = build_pipeline(settings, ScanOptions(offline=True, rollout=service.state()))
        result = pipeline.scan(make_message(subject="Verify your account now"))
        staged = [f for f in result.findings if f.artifact == "model:synthetic"]
        assert all(f.state is ArtifactState.SHADOW for f in staged)
        assert "model:synthetic#shadow" in result.versions

        report = service.check(ADMIN, "model:synthetic")
        assert report.passed  # nothing known-good to refuse on in this test
        service.promote(ADMIN, "model:synthetic", to="active", force=True, reason="test")
        states = {d.name: d.state for d in store.rollout.deployments("model")}
        assert states == {"default": ArtifactState.RETIRED, "synthetic": ArtifactState.ACTIVE}
        pipeline = build_pipeline(settings, ScanOptions(offline=True, rollout=service.state()))
        assert pipeline.versions()["model:synthetic"] == dep.version

        back = service.rollback(ADMIN, "model:synthetic", reason="worse on our mail")
        assert back.name == "default"
        pipeline = build_pipeline(settings, ScanOptions(offline=True, rollout=service.state()))
        assert "model:default" in pipeline.versions()
        assert "model:synthetic" not in pipeline.versions()


def test_a_model_that_lets_robustness_lures_through_is_refused(tmp_path: Path,
                                                               retrained: Path) -> None:
    """The synthetic model knows none of today's lures: lures of the shipped robustness set
    that the active model junks would reach the inbox with it, and the gate names them."""
    settings = Settings.model_validate({"store": {"data_dir": str(tmp_path)},
                                        "rollout": {"known_good": [], "recent_messages": 0}})
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        service.stage(ADMIN, str(retrained))
        report = service.check(ADMIN, "model:synthetic")
        assert not report.passed
        # no known_good corpus: the set's legitimate mail alone meets min_known_good (20)
        assert report.known_good == len(robustness_cases("ham")) >= 20
        assert not any("minimum" in r for r in report.reasons)
        through = report.let_through
        assert through and all(m["source"] == ROBUSTNESS_SOURCE for m in through)
        assert all(m["id"].startswith("lures/") for m in through)
        assert all(m["before"].endswith(("/junk", "/quarantine", "/reject")) for m in through)
        assert all(m["after"].endswith(("/deliver", "/tag")) for m in through)
        ids = ", ".join(m["id"] for m in through)
        assert f"lets {len(through)} robustness lure(s) through: {ids}" in report.reasons
        assert report.to_dict()["let_through"] == through
        # promotion reads the refusal
        with pytest.raises(InputError, match="robustness lure"):
            service.promote(ADMIN, "model:synthetic", to="active")
