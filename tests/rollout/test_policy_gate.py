"""Issue 17 #6: a [policy] or [ml] bands change passes the gate or is forced, and a gateway that
starts on a policy nobody checked says so (warning, ``policy.unchecked`` audit, alert).

Real pipelines and a real SQLite store; the candidates are configuration files as an operator
writes them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from mailsift.config import load_settings
from mailsift.config.schema import Settings
from mailsift.core.errors import InputError
from mailsift.core.verdict import Action, Category
from mailsift.interfaces.cli.main import main
from mailsift.services.access import Principal
from mailsift.services.policy_gate import config_version
from mailsift.services.rollout import RolloutService
from mailsift.store.store import Store
from mailsift.testing.messages import make_message
from mailsift.testing.parity import Clock, gateway_settings, with_gateway

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ADMIN = Principal("ops@example.net", "admin")


def notes_corpus(tmp: Path, n: int = 25) -> str:
    folder = tmp / "notes"
    folder.mkdir(exist_ok=True)
    for i in range(n):
        (folder / f"note-{i}.eml").write_bytes(make_message(
            subject=f"Team notes {i}", message_id=f"<note-{i}@example.org>",
            text="Hi,\n\nthe notes from today's meeting are on the wiki.\n"))
    return str(folder)


def running(tmp: Path, *, robustness: bool = False, **extra: Any) -> Settings:
    return Settings.model_validate({
        "store": {"data_dir": str(tmp / "data")},
        "scan": {"offline": True},
        "rollout": {"recent_messages": 0, "robustness_set": robustness,
                    "known_good": [notes_corpus(tmp)]},
        **extra,
    })


def candidate(tmp: Path, toml: str, name: str = "candidate.toml") -> tuple[str, Settings]:
    path = tmp / name
    path.write_text(toml)
    return str(path), load_settings(path).settings


def service(settings: Settings) -> RolloutService:
    return RolloutService(Store.open(settings.store), settings)


def test_a_policy_that_quarantines_known_good_is_refused(tmp_path: Path) -> None:
    svc = service(running(tmp_path))
    path, cand = candidate(tmp_path, '[policy.actions]\nclean = "quarantine"\n')
    report = svc.check_config(ADMIN, cand, source=path)
    assert not report.passed
    assert any("quarantines 25 known-good message(s)" in r for r in report.reasons)
    (entry,) = svc.store.audit.entries(action="rollout.check")
    assert entry.target == f"policy@{config_version(cand)}"
    assert entry.detail["passed"] is False and entry.detail["source"] == path
    with pytest.raises(InputError, match="has not passed the gate: quarantines 25"):
        svc.accept_config(ADMIN, cand)
    with pytest.raises(InputError, match="force with a reason overrides it"):
        svc.accept_config(ADMIN, cand, force=True, reason=" ")
    assert svc.accept_config(ADMIN, cand, force=True, reason="INC-7 lockdown") == "forced"
    (forced,) = svc.store.audit.entries(action="rollout.force")
    assert forced.target == entry.target and forced.detail["reason"] == "INC-7 lockdown"
    (alert,) = svc.store.rollout.alerts()
    assert alert.kind == "forced_promotion" and "quarantines 25" in alert.message


def test_a_policy_that_lets_robustness_lures_through_is_refused(tmp_path: Path) -> None:
    svc = service(running(tmp_path, robustness=True))
    deliver = "\n".join(f'{c} = "deliver"' for c in (
        "malware", "phish_high", "phish", "impersonation_user", "impersonation_domain",
        "spam_high", "spoof", "phish_suspect", "spam", "bulk"))
    _, cand = candidate(tmp_path, f"[policy.actions]\n{deliver}\n")
    report = svc.check_config(ADMIN, cand)
    assert not report.passed
    assert any("robustness lure(s) through" in r for r in report.reasons)


def test_too_little_known_good_is_no_pass(tmp_path: Path) -> None:
    settings = running(tmp_path)
    settings = settings.model_copy(update={"rollout": settings.rollout.model_copy(
        update={"known_good": (), "min_known_good": 20})})
    _, cand = candidate(tmp_path, "[policy.thresholds]\nspam = 7.0\n")
    report = service(settings).check_config(ADMIN, cand)
    assert not report.passed and "replayed 0 known-good" in report.reasons[0]


def test_bands_are_part_of_the_config_version(tmp_path: Path) -> None:
    base = running(tmp_path)
    _, stricter = candidate(tmp_path, "[policy.thresholds]\nspam = 7.0\n")
    bands = [b.model_dump(mode="json") for b in base.ml.bands]
    bands[0]["weight"] = bands[0]["weight"] + 1.0
    banded = base.model_copy(update={"ml": base.ml.model_copy(
        update={"bands": type(base.ml).model_validate({"bands": bands}).bands})})
    versions = {config_version(base), config_version(stricter), config_version(banded)}
    assert len(versions) == 3
    assert config_version(base).split("+")[0] == config_version(banded).split("+")[0]


def test_gateway_start_baseline_then_unchecked_then_checked(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    notes = notes_corpus(tmp_path)
    first = gateway_settings(tmp_path / "data", rollout={"known_good": [notes],
                                                         "recent_messages": 0})

    def start(settings: Settings) -> list[str]:
        async def body(parts: Any) -> list[str]:
            return [e.action for e in parts.store.audit.entries(limit=1000)
                    if e.action.startswith("policy.")]
        return with_gateway(settings, Clock(), body)

    assert start(first) == ["policy.baseline"]  # a fresh install: recorded, no alert
    svc = service(first)
    assert svc.store.rollout.alerts() == []
    assert start(first) == ["policy.baseline"]  # the same policy: nothing new
    changed = first.model_copy(update={"policy": first.policy.model_copy(
        update={"actions": {Category.SPAM: Action.QUARANTINE}})})
    caplog.set_level(logging.WARNING, logger="mailsift.rollout")
    assert start(changed) == ["policy.unchecked", "policy.baseline"]  # still starts
    assert "has not passed the gate" in caplog.text
    (alert,) = svc.store.rollout.alerts()
    assert alert.kind == "policy_unchecked" and config_version(changed) in alert.subject
    report = svc.check_config(ADMIN, changed)
    assert report.passed, report.reasons
    assert svc.accept_config(ADMIN, changed) == "already accepted"
    assert start(changed) == ["policy.unchecked", "policy.baseline"]  # checked: no new one
    assert len(svc.store.rollout.alerts()) == 1


def test_cli_check_config_and_accept_config(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    notes = notes_corpus(tmp_path)
    conf = tmp_path / "mailsift.toml"
    conf.write_text(f'[store]\ndata_dir = "{tmp_path / "data"}"\n[scan]\noffline = true\n'
                    f'[rollout]\nrecent_messages = 0\nrobustness_set = false\n'
                    f'known_good = ["{notes}"]\n')
    bad = tmp_path / "bad.toml"
    bad.write_text(conf.read_text() + '[policy.actions]\nclean = "quarantine"\n')
    good = tmp_path / "good.toml"
    good.write_text(conf.read_text() + "[policy.thresholds]\nspam_high = 16.0\n")
    c = str(conf)
    assert main(["rollout", "check-config", str(good), "--config", c]) == 0
    assert "PASSED" in capsys.readouterr().out
    assert main(["rollout", "check-config", str(bad), "--config", c]) == 1
    assert "REFUSED" in capsys.readouterr().out
    assert main(["rollout", "accept-config", str(bad), "--config", c]) == 2  # needs --force
    capsys.readouterr()
    assert main(["rollout", "accept-config", str(bad), "--force", "--reason", "drill",
                 "--config", c]) == 0
    assert "forced" in capsys.readouterr().out
