"""Settings derived from the detector declarations, and typed policy names."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mailsift.config.detectors import LinkSettings
from mailsift.config.loader import load_settings
from mailsift.config.schema import Settings, Thresholds
from mailsift.core.catalog import catalog
from mailsift.core.errors import ConfigError
from mailsift.core.verdict import DETECTED, Action, Category


def test_enabled_defaults_to_the_installed_detectors_declared_on() -> None:
    s = Settings()
    assert s.detectors.enabled == catalog().default_enabled()
    assert "enabled" not in s.detectors.model_fields_set


def test_an_unknown_section_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match=r"unknown section \[linkz\]: neither a mailsift "
                                              "section nor the section of an installed detector"):
        Settings.model_validate({"linkz": {"max_urls": 5}})


def test_detector_section_is_typed() -> None:
    s = Settings(links={"max_urls": 7})
    assert s.detector_section("links", LinkSettings).max_urls == 7
    with pytest.raises(TypeError, match=r"\[links\] is a LinkSettings"):
        s.detector_section("links", Thresholds)
    assert s.detector_section("not_installed", LinkSettings) == LinkSettings()


def test_every_category_is_configurable_from_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "mailsift.toml"
    cfg.write_text('[policy.actions]\nphish_suspect = "quarantine"\nbulk = "junk"\n\n'
                   '[[policy.policies]]\nname = "vip"\nrecipients = ["ceo@example.org"]\n'
                   'actions = { phish_suspect = "reject" }\n')
    policy = load_settings(cfg, environ={}).settings.policy
    assert policy.actions == {Category.PHISH_SUSPECT: Action.QUARANTINE,
                              Category.BULK: Action.JUNK}
    assert policy.policies[0].actions == {Category.PHISH_SUSPECT: Action.REJECT}
    cfg.write_text('[policy.actions]\nphish_suspected = "quarantine"\n')
    with pytest.raises(ConfigError, match="unknown category 'phish_suspected'"):
        load_settings(cfg, environ={})


def test_thresholds_are_keyed_by_category() -> None:
    t = Thresholds()
    assert {c.value for c in DETECTED} == set(Thresholds.model_fields)
    assert t.of(Category.PHISH_SUSPECT) == 4.0 and t.of(Category.MALWARE) == 1.0
