"""A new release's built-in pack and model are detection changes: on an upgraded site they run
in shadow beside what the site enforces (from its local copy) until promoted; on a new site they
are the baseline. Simulated upgrades: an "old release" ships a pack that differs from today's
built-in pack in one rule's weight (or ships another model), and its files disappear when the
"package" is replaced."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from mailsift.config.schema import Settings
from mailsift.core.findings import ArtifactState
from mailsift.core.rollout import Deployment
from mailsift.ml.model import load_model, shipped_model_path
from mailsift.ml.synthetic import train_synthetic_model
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.rules import BUILTIN_PACK, load_pack
from mailsift.services.access import Principal
from mailsift.services.rollout import RolloutService
from mailsift.services.upgrades import Builtin, shipped_builtins
from mailsift.store.store import Store
from mailsift.testing.messages import make_message

ADMIN = Principal("ops", "admin")
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def _settings(tmp_path: Path, **rollout: object) -> Settings:
    return Settings.model_validate({
        "store": {"data_dir": str(tmp_path / "data")},
        "rollout": {"known_good": [], "recent_messages": 0, "min_shadow_hours": 0,
                    "min_known_good": 0, **rollout}})


def _old_pack(tmp_path: Path) -> Builtin:
    """The built-in pack of an "earlier release": GTUBE weighed 19 instead of 20."""
    text = Path(BUILTIN_PACK).read_text()
    marker = 'id = "GTUBE"'
    head, tail = text.split(marker, 1)
    tail = tail.replace("weight = 20.0", "weight = 19.0", 1)
    path = tmp_path / "old-release" / "default.toml"
    path.parent.mkdir(parents=True)
    path.write_text(head + marker + tail)
    pack = load_pack(path)
    return Builtin("rules", pack.name, pack.version, path)


def _gtube_weights(settings: Settings, service: RolloutService) -> dict[str, float]:
    pipeline = build_pipeline(settings, ScanOptions(offline=True, rollout=service.state()))
    result = pipeline.scan(make_message(text=f"test {GTUBE} end\n"))
    return {f.state.value: f.weight for f in result.findings if f.code == "GTUBE"}


def test_a_new_site_adopts_the_shipped_versions_as_its_baseline(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        done = service.adopt_builtins()
        assert {(a.artifact, a.outcome) for a in done} == {
            ("rules:default", "baseline"), ("model:default", "baseline")}
        deps = {d.artifact: d for d in store.rollout.deployments()}
        assert {d.state for d in deps.values()} == {ArtifactState.ACTIVE}
        for dep in deps.values():  # local copies: they outlive the package on disk
            assert Path(dep.path).is_file() and str(tmp_path / "data") in dep.path
        assert {a.outcome for a in service.adopt_builtins()} == {"known"}  # idempotent
        assert not store.rollout.alerts()
        # the baseline is not a change: a spike on it is never answered by demoting it
        pack = deps["rules:default"]
        assert not service.young(f"artifact:rules:default@{pack.version}")
        assert not service.young("rule:PHISH_VERIFY_ACCOUNT")
        assert _gtube_weights(settings, service) == {"active": 20.0}


def test_an_upgrade_stages_the_new_pack_beside_the_enforced_one(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    old = _old_pack(tmp_path)
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        assert [a.outcome for a in service.adopt_builtins([old])] == ["baseline"]
        shutil.rmtree(old.source.parent)  # the upgrade replaced the package's files

        done = service.adopt_builtins()
        outcomes = {a.artifact: a.outcome for a in done}
        assert outcomes["rules:default"] == "staged"
        states = {d.version: d.state for d in store.rollout.deployments("rules", "default")}
        new_version = load_pack(BUILTIN_PACK).version
        assert states == {old.version: ArtifactState.ACTIVE, new_version: ArtifactState.SHADOW}
        # enforced: the old release's pack, from its local copy; the new one only in shadow
        assert _gtube_weights(settings, service) == {"active": 19.0, "shadow": 20.0}
        alert = store.rollout.alerts()[0]
        assert (alert.kind, alert.version) == ("builtin_staged", new_version)
        assert "rollout check rules:default" in alert.message
        assert store.audit.entries(action="rollout.builtin_staged")

        # the ordinary life cycle from here: gate, promote, and roll back to the local copy
        assert service.check(ADMIN, "rules:default").passed
        service.promote(ADMIN, "rules:default", to="active")
        assert _gtube_weights(settings, service) == {"active": 20.0}
        # young after promotion: only what changed in it (GTUBE), not the established rules
        assert service.young(f"artifact:rules:default@{new_version}")
        assert service.young("rule:GTUBE")
        assert not service.young("rule:PHISH_VERIFY_ACCOUNT")
        service.rollback(ADMIN, "rules:default", reason="test")
        assert _gtube_weights(settings, service) == {"active": 19.0}
        assert {a.outcome for a in service.adopt_builtins()} == {"known"}  # stays rolled back


def test_builtin_upgrades_active_enforces_at_once_and_keeps_the_rollback_target(
        tmp_path: Path) -> None:
    settings = _settings(tmp_path, builtin_upgrades="active")
    old = _old_pack(tmp_path)
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        service.adopt_builtins([old])
        outcomes = {a.artifact: a.outcome for a in service.adopt_builtins()}
        assert outcomes["rules:default"] == "activated"
        assert _gtube_weights(settings, service) == {"active": 20.0}
        assert store.rollout.alerts()[0].kind == "builtin_activated"
        new_version = load_pack(BUILTIN_PACK).version
        assert service.young(f"artifact:rules:default@{new_version}")  # the breaker may undo it
        service.rollback(ADMIN, "rules:default")
        assert _gtube_weights(settings, service) == {"active": 19.0}


def test_an_enforced_version_that_cannot_run_is_replaced_and_said(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with Store.open(settings.store) as store:
        # registered by a release that kept no local copies (path ""), at another version
        store.rollout.stage(Deployment("rules", "default", "0ldversion000", ArtifactState.ACTIVE),
                            actor="ops", note="configured version (baseline)")
        service = RolloutService(store, settings)
        outcomes = {a.artifact: a for a in service.adopt_builtins()}
        adoption = outcomes["rules:default"]
        assert adoption.outcome == "activated"
        assert "kept no local copy" in adoption.detail
        assert _gtube_weights(settings, service) == {"active": 20.0}
        alert = next(a for a in store.rollout.alerts() if a.subject == "rules:default")
        assert alert.kind == "builtin_activated"


def test_a_registered_version_without_a_copy_gets_one(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    version = load_pack(BUILTIN_PACK).version
    with Store.open(settings.store) as store:
        store.rollout.stage(Deployment("rules", "default", version, ArtifactState.ACTIVE),
                            actor="ops", note="configured version (baseline)")
        service = RolloutService(store, settings)
        outcomes = {a.artifact: a.outcome for a in service.adopt_builtins()}
        assert outcomes["rules:default"] == "copied"
        dep = store.rollout.deployments("rules", "default")[0]
        assert load_pack(dep.path).version == version


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_synthetic_model(tmp_path_factory.mktemp("older-model"))


def test_an_upgrade_stages_the_new_model_beside_the_enforced_one(tmp_path: Path,
                                                                 other_model: Path) -> None:
    settings = _settings(tmp_path)
    older = load_model(other_model)
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        service.adopt_builtins([Builtin("model", older.name, older.version, other_model)])
        outcomes = {a.artifact: a.outcome for a in service.adopt_builtins()}
        assert outcomes["model:default"] == "staged"
        pipeline = build_pipeline(settings, ScanOptions(offline=True, rollout=service.state()))
        versions = pipeline.versions()
        assert versions["model:synthetic"] == older.version  # still the one that acts
        assert versions["model:default#shadow"] == load_model(shipped_model_path()).version


def test_a_site_model_is_not_replaced_even_when_upgrades_enforce(tmp_path: Path,
                                                                 other_model: Path) -> None:
    settings = _settings(tmp_path, builtin_upgrades="active")
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        service.adopt_builtins()  # the shipped model is this site's baseline
        service.stage(ADMIN, str(other_model))
        service.promote(ADMIN, "model:synthetic", to="active", force=True, reason="ours")
        newer = Builtin("model", "default", "f" * 12, shipped_model_path())  # "next release"
        assert [a.outcome for a in service.adopt_builtins([newer])] == ["staged"]
        states = {d.name: d.state for d in store.rollout.deployments("model")
                  if d.state is not ArtifactState.RETIRED}
        assert states == {"synthetic": ArtifactState.ACTIVE, "default": ArtifactState.SHADOW}


def test_a_staged_version_that_does_not_load_never_stops_scanning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = _settings(tmp_path)
    broken = tmp_path / "broken.toml"
    broken.write_text('[pack]\nname = "default"\n[[rule]]\nid = "X"\nbody = "/(/"\n')
    model_copy = tmp_path / "gone" / "m.json"
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        service.adopt_builtins()
        store.rollout.stage(Deployment("rules", "default", "b" * 12, ArtifactState.SHADOW,
                                       str(broken)), actor="newer-node")
        store.rollout.stage(Deployment("model", "default", "c" * 12, ArtifactState.SHADOW,
                                       str(model_copy)), actor="newer-node")
        with caplog.at_level(logging.ERROR):
            assert _gtube_weights(settings, service) == {"active": 20.0}
        assert "rules:default@bbbbbbbbbbbb not run" in caplog.text
        assert "model:default@cccccccccccc not run" in caplog.text


def test_what_ships_follows_the_settings(tmp_path: Path) -> None:
    assert {b.artifact for b in shipped_builtins(_settings(tmp_path))} == {
        "rules:default", "model:default"}
    own = Settings.model_validate({"rules": {"builtin": False},
                                   "ml": {"model_path": str(shipped_model_path())}})
    assert shipped_builtins(own) == []


def test_the_gateway_registers_the_builtins_when_it_starts(tmp_path: Path) -> None:
    from mailsift.app import build_gateway

    settings = Settings.model_validate({"store": {"data_dir": str(tmp_path / "data")},
                                        "gateway": {"workers": 0}, "scan": {"offline": True}})
    parts = build_gateway(settings)
    try:
        deps = {d.artifact: d.state for d in parts.store.rollout.deployments()}
        assert deps == {"rules:default": ArtifactState.ACTIVE,
                        "model:default": ArtifactState.ACTIVE}
    finally:
        parts.scans.close()
        parts.store.close()


def test_with_the_pack_and_the_model_both_named_default_a_bare_name_is_refused(
        tmp_path: Path) -> None:
    from mailsift.core.errors import InputError

    settings = _settings(tmp_path)
    old = _old_pack(tmp_path)
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        service.adopt_builtins([old])
        service.adopt_builtins()
        service.promote(ADMIN, "rules:default", to="active", force=True, reason="test")
        with pytest.raises(InputError, match="name one of them"):
            service.rollback(ADMIN, "default")  # never the model when the pack was meant
        assert service.rollback(ADMIN, "rules:default").version == old.version
        states = {d.artifact: d.state for d in store.rollout.deployments("model")}
        assert states == {"model:default": ArtifactState.ACTIVE}


def test_nodes_starting_together_register_a_version_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    with Store.open(settings.store) as store:
        first, second = RolloutService(store, settings), RolloutService(store, settings)
        assert {a.outcome for a in first.adopt_builtins()} == {"baseline"}
        # the second node read the registry before the first wrote to it
        monkeypatch.setattr(store.rollout, "deployments", lambda *a, **k: [])
        outcomes = {a.outcome for a in second.adopt_builtins()}
        assert outcomes == {"known"}
        monkeypatch.undo()
        assert len(store.rollout.deployments()) == 2
        assert not list((tmp_path / "data" / "artifacts").rglob("*.tmp"))
