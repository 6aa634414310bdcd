"""Building detectors from their declarations, and the startup check of what they emit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from mailsift.config.schema import Settings
from mailsift.core.catalog import catalog
from mailsift.core.context import ScanContext
from mailsift.core.errors import ConfigError
from mailsift.core.findings import Family, Finding, Stage
from mailsift.detectors.base import Services
from mailsift.detectors.registry import _check_sections, build_detectors, check_built
from mailsift.detectors.spec import CodeSpec, DetectorSpec
from mailsift.history import MemoryHistory


class _Probe:
    name = "probe"
    stage = Stage.CONTENT

    def __init__(self, codes: frozenset[str]) -> None:
        self.codes = codes

    def run(self, ctx: ScanContext) -> Sequence[Finding]:
        return ()

    def versions(self) -> Mapping[str, str]:
        return {}


def _spec(**kw: Any) -> DetectorSpec:
    base: dict[str, Any] = {
        "name": "probe", "stage": Stage.CONTENT, "summary": "t", "prefix": "PROBE_",
        "codes": {"PROBE_A": CodeSpec(1.0, Family.SPAM, "a")},
        "factory": lambda s, v: _Probe(frozenset({"PROBE_A"}))}
    return DetectorSpec(**{**base, **kw})


def test_every_builtin_detector_matches_its_declaration() -> None:
    built = build_detectors(Settings(), Services(history=MemoryHistory()))
    assert [d.name for d in built] == list(Settings().detectors.enabled)
    for det in built:
        spec = catalog()[det.name]
        assert det.stage == spec.stage
        if not spec.dynamic_codes:
            assert set(det.codes) <= set(spec.codes)


def test_a_detector_unlike_its_declaration_fails_startup() -> None:
    assert isinstance(check_built(_spec(), _Probe(frozenset({"PROBE_A"}))), _Probe)
    with pytest.raises(ConfigError, match=r"undeclared code\(s\) PROBE_B"):
        check_built(_spec(), _Probe(frozenset({"PROBE_A", "PROBE_B"})))
    with pytest.raises(ConfigError, match="the declaration says reputation"):
        check_built(_spec(stage=Stage.REPUTATION), _Probe(frozenset({"PROBE_A"})))
    with pytest.raises(ConfigError, match="returned a str"):
        check_built(_spec(), "not a detector")


def test_a_detector_may_not_redefine_a_mailsift_section() -> None:
    class Mine(BaseModel):
        x: int = 1

    _check_sections([catalog()["history"]])  # the built-in declares the model mailsift uses
    with pytest.raises(ConfigError, match=r"\[policy\] is mailsift's own section"):
        _check_sections([_spec(name="policy", settings=Mine)])


def test_unknown_detector_names_fail_startup() -> None:
    with pytest.raises(ConfigError, match=r"unknown detector\(s\) linx; installed: "):
        build_detectors(Settings(detectors={"enabled": ["parse", "linx"]}), Services())
