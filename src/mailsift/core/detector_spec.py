"""What a detector declares about itself: one ``DetectorSpec`` per detector module.

This is the contract between mailsift and every detector, built-in or third-party; it lives in
``core`` because the layers below the detectors read it too (config derives its defaults and
sections from it, rule packs the reserved prefixes). ``mailsift.detectors.spec`` re-exports it
for detector authors.

The declaration is the single source for everything outside the detector that needs to know
about it: ``[detectors] enabled`` (its default), the ``[<name>]`` settings section, the code
prefixes rule packs may not use, the finding families it speaks for (checked against ``Family``
at startup) and the generated pages in ``docs/detectors/``. Detectors are found through the
``mailsift.detectors`` entry point group (see ``catalog``); a third-party package declares one
the same way the built-in ones do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mailsift.core.findings import Family, Stage

__all__ = ["CodeSpec", "DetectorSpec", "Factory", "SpecError", "check_spec"]

#: ``(Settings, Services) -> Detector``: builds the detector from the settings and the services
#: the composition root hands over (typed loosely here, below those layers; what it returns is
#: checked against the declaration when it is built).
Factory = Callable[[Any, Any], Any]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CODE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
_PREFIX = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_$")
_NO_CODES: Mapping[str, CodeSpec] = MappingProxyType({})


class SpecError(ValueError):
    """A detector declaration that cannot be used (startup fails with it)."""


@dataclass(frozen=True, slots=True)
class CodeSpec:
    """One finding code: its default weight, the family it counts in (``None``: informational,
    it never counts) and what it means. A family given as a string must name a ``Family``: a
    misspelt family would otherwise make the code silently stop counting. ``weight_note`` says
    where the weight comes from when it is not the fixed default (a level, a model band)."""

    weight: float
    family: Family | None
    description: str
    weight_note: str = ""

    def __post_init__(self) -> None:
        if self.family is not None and not isinstance(self.family, Family):
            try:
                object.__setattr__(self, "family", Family(self.family))
            except ValueError:
                raise SpecError(f"family {self.family!r} is not one of "
                                f"{', '.join(f.value for f in Family)} (or None)") from None


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    """A detector's declaration.

    ``prefix`` is the code prefix the detector owns (every code starts with it; rule ids may
    not). ``settings`` is the pydantic model of its ``[<name>]`` section (``None``: it has
    none).
    ``order`` places it among the detectors of its stage in the default ``[detectors] enabled``
    list. ``requires`` names a module it cannot run without and the extra that installs it.
    ``dynamic_codes`` says where codes come from when they are data (rule ids), in which case
    ``codes`` may stay empty. ``notes`` is prose for its page in ``docs/detectors/``.
    """

    name: str
    stage: Stage
    summary: str
    factory: Factory
    codes: Mapping[str, CodeSpec] = field(default_factory=lambda: _NO_CODES)
    prefix: str = ""
    settings: type[Any] | None = None
    enabled_by_default: bool = True
    order: int = 100
    requires: tuple[str, str] | None = None
    dynamic_codes: str = ""
    #: further prefixes of its dynamic codes (the reputation detector's ``RBL_``/``URIBL_``
    #: codes, one per configured list): reserved from rule ids like ``prefix``
    dynamic_prefixes: tuple[str, ...] = ()
    notes: str = ""

    @property
    def families(self) -> tuple[Family, ...]:
        return tuple(dict.fromkeys(c.family for c in self.codes.values() if c.family))


def check_spec(spec: object, where: str) -> DetectorSpec:
    """``spec`` as a usable declaration, or a ``SpecError`` saying what is wrong and where."""
    if not isinstance(spec, DetectorSpec):
        raise SpecError(f"{where}: is a {type(spec).__name__}, not a DetectorSpec")
    problems: list[str] = []
    if not _NAME.match(spec.name):
        problems.append(f"name {spec.name!r} must be lower_snake_case")
    if not isinstance(spec.stage, Stage):
        problems.append(f"stage {spec.stage!r} is not a Stage")
    if not callable(spec.factory):
        problems.append("factory is not callable")
    if spec.prefix and not _PREFIX.match(spec.prefix):
        problems.append(f"prefix {spec.prefix!r} must be UPPER case and end with '_'")
    for extra in spec.dynamic_prefixes:
        if not _PREFIX.match(extra):
            problems.append(f"dynamic prefix {extra!r} must be UPPER case and end with '_'")
    if spec.codes and not spec.prefix:
        problems.append("declares codes but no prefix")
    if not spec.codes and not spec.dynamic_codes:
        problems.append("declares no codes (and no dynamic_codes)")
    for code, cs in spec.codes.items():
        if not isinstance(cs, CodeSpec):
            problems.append(f"code {code}: is a {type(cs).__name__}, not a CodeSpec")
            continue
        if not _CODE.match(code):
            problems.append(f"code {code!r} must be UPPER_SNAKE")
        elif spec.prefix and not code.startswith(spec.prefix):
            problems.append(f"code {code} is outside the detector's prefix {spec.prefix}")
        if cs.family is not None and not isinstance(cs.family, Family):
            problems.append(f"code {code}: family {cs.family!r} is not a Family")
        if not cs.description.strip():
            problems.append(f"code {code}: no description")
    if spec.settings is not None and not (isinstance(spec.settings, type)
                                          and callable(getattr(spec.settings, "model_validate",
                                                               None))):
        problems.append("settings is not a pydantic model class")
    if problems:
        raise SpecError(f"{where} (detector {spec.name!r}): " + "; ".join(problems))
    return spec
