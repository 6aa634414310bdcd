"""The documented DNS-list example loads, `config check` accepts it, and `config dump` writes
TOML that loads back to the same settings (list codes are nested tables)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mailsift.config.reputation import ReputationSettings
from mailsift.config.schema import Settings
from mailsift.interfaces.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "reputation.toml"


def test_off_by_default() -> None:
    settings = Settings()
    assert not settings.reputation.configured
    assert settings.ratelimit.limits == () and not settings.greylist.enabled
    assert "reputation" in settings.detectors.enabled  # on the list, asking nothing


def test_example_loads_with_the_documented_lists() -> None:
    rep = Settings.model_validate(tomllib.loads(EXAMPLE.read_text())).reputation
    assert isinstance(rep, ReputationSettings)
    names = [(x.name, x.zone) for x in (*rep.ip_lists, *rep.domain_lists)]
    assert names == [("ZEN", "zen.spamhaus.org"), ("DBL", "dbl.spamhaus.org"),
                     ("SURBL", "multi.surbl.org"), ("URIBL", "multi.uribl.com")]
    zen = rep.ip_lists[0]
    assert zen.code("127.0.0.2").meaning == "SBL" and zen.code("127.0.0.9").weight == 15.0
    assert zen.code("127.0.0.99").weight == 3.0  # default_weight
    dbl = rep.domain_lists[0]
    assert dbl.code("127.0.1.4").category == "phish" and dbl.code("127.0.1.2").category == "spam"
    assert dbl.is_error("127.0.1.255") and dbl.is_error("127.255.255.254")
    assert rep.domain_lists[2].is_error("127.0.0.1")  # URIBL's refusal


def test_dump_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", str(EXAMPLE)]) == 0
    capsys.readouterr()
    assert main(["config", "dump", "--config", str(EXAMPLE)]) == 0
    dumped = capsys.readouterr().out
    again = Settings.model_validate(tomllib.loads(dumped))
    assert again.reputation == Settings.model_validate(
        tomllib.loads(EXAMPLE.read_text())).reputation
