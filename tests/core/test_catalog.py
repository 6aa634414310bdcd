"""The detector catalog: entry points in, checked declarations out, strict on every mistake."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

import pytest

from mailsift.core.catalog import CORE_PREFIXES, GROUP, catalog, load_catalog
from mailsift.core.detector_spec import CodeSpec, DetectorSpec, SpecError
from mailsift.core.errors import ConfigError
from mailsift.core.findings import Family, Stage


def _factory(settings: Any, services: Any) -> Any:
    raise AssertionError("not built in these tests")


def _spec(name: str, prefix: str, *codes: str, **kw: Any) -> DetectorSpec:
    return DetectorSpec(name=name, stage=Stage.CONTENT, summary="test", factory=_factory,
                        prefix=prefix, codes={c: CodeSpec(1.0, Family.SPAM, "x") for c in codes},
                        **kw)


GOOD = _spec("good", "GOOD_", "GOOD_ONE")
OUTSIDE = _spec("outside", "OUT_", "OUT_ONE", "ELSE_TWO")
OVERLAP = _spec("overlap", "GOOD_MORE_", "GOOD_MORE_X")
PIPELINE = _spec("pipeline", "DETECTOR_", "DETECTOR_X")
NO_CODES = _spec("nocodes", "")
NOT_A_SPEC = {"name": "dict"}
_bad = CodeSpec(1.0, Family.SPAM, "x")
object.__setattr__(_bad, "family", "phsh")  # as a declaration built without the check would be
BAD_FAMILY = DetectorSpec(name="badfamily", stage=Stage.CONTENT, summary="t", factory=_factory,
                          prefix="BADF_", codes={"BADF_X": _bad})


def _ep(name: str, attr: str) -> EntryPoint:
    return EntryPoint(name, f"{__name__}:{attr}", GROUP)


def test_builtin_detectors_come_from_entry_points_in_run_order() -> None:
    cat = catalog()
    builtin = cat.from_dist("mailsift")
    assert builtin.names() == ("parse", "auth", "rules", "links", "attachments", "impersonation",
                               "bulk", "history", "reputation", "ml")
    for spec in builtin.specs.values():
        assert all(isinstance(c.family, Family | None) for c in spec.codes.values())
        assert all(code.startswith(spec.prefix) for code in spec.codes)
    assert set(cat.reserved_prefixes()) >= {*CORE_PREFIXES, "URL_", "ATT_", "AUTH_", "ML_",
                                            "REPUTATION_", "RBL_", "URIBL_"}
    owner = cat.owner_of("URL_LOOKALIKE")
    assert owner is not None and owner.name == "links"
    assert cat["bulk"].codes["BULK_BCL"].weight_note  # the level, not a fixed weight


def test_a_good_declaration_loads() -> None:
    cat = load_catalog([_ep("good", "GOOD")])
    assert cat.names() == ("good",) and cat.reserved_prefixes() == (*CORE_PREFIXES, "GOOD_")


@pytest.mark.parametrize(("name", "attr", "message"), [
    ("outside", "OUTSIDE", "ELSE_TWO is outside the detector's prefix OUT_"),
    ("badfamily", "BAD_FAMILY", "family 'phsh' is not a Family"),
    ("nocodes", "NO_CODES", "declares no codes"),
    ("dict", "NOT_A_SPEC", "not a DetectorSpec"),
    ("pipeline", "PIPELINE", "is the pipeline's"),
    ("other", "GOOD", "the spec is named 'good'"),
    ("missing", "NO_SUCH_ATTRIBUTE", "failed to load"),
])
def test_a_bad_declaration_fails_startup_naming_the_entry_point(name: str, attr: str,
                                                                  message: str) -> None:
    with pytest.raises(ConfigError, match="entry point") as err:
        load_catalog([_ep(name, attr)])
    assert message in str(err.value)


def test_an_entry_point_whose_module_does_not_import_fails_startup() -> None:
    ep = EntryPoint("gone", "mailsift_no_such_plugin_module:SPEC", GROUP)
    with pytest.raises(ConfigError, match="failed to load: ModuleNotFoundError"):
        load_catalog([ep])


def test_two_detectors_may_not_share_a_prefix_or_a_name() -> None:
    with pytest.raises(ConfigError, match="overlaps GOOD_ of detector 'good'"):
        load_catalog([_ep("good", "GOOD"), _ep("overlap", "OVERLAP")])
    with pytest.raises(ConfigError, match="two detectors are named 'good'"):
        load_catalog([_ep("good", "GOOD"), _ep("good", "GOOD")])


def test_a_misspelt_family_string_is_refused_where_it_is_written() -> None:
    assert CodeSpec(1.0, "phish", "x").family is Family.PHISH  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="'phsh' is not one of malware, phish"):
        CodeSpec(1.0, "phsh", "x")  # type: ignore[arg-type]
