"""Building the enabled detectors from the installed ones (``catalog``).

Detectors are named explicitly in ``[detectors] enabled`` (default: every installed detector
declared on by default); an unknown name fails startup (a typo must not silently switch a check
off). A detector module is imported when the catalog is read, which is why declarations keep
heavy imports inside their factory.

Nothing is dropped silently when an optional package is missing, at two levels:

* a whole detector whose declaration ``requires`` a module from an extra: if ``[detectors]
  enabled`` names it explicitly, startup fails with a ``ConfigError`` naming the extra; if it
  is only on by default, it is left out;
* a part of a detector (``REQUIRES``: Office macro scanning without the ``[attachments]``
  extra): asked for explicitly, startup fails; on only by default, the detector marks each file
  it could not check.

Either way ``unavailable_detectors`` says what is off and what to install (``mailsift scan``,
``config check|explain`` print it, ``serve`` logs it as a warning).

Every detector built is checked against its declaration: same name and stage, and no code it
says it may emit outside the declared ones (rule packs, whose codes are data, excepted).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mailsift.config.schema import Settings
from mailsift.core.catalog import catalog
from mailsift.core.errors import ConfigError
from mailsift.detectors._common import installed
from mailsift.detectors.base import Detector, Services
from mailsift.detectors.spec import DetectorSpec

__all__ = [
    "REQUIRES",
    "Requirement",
    "build_detectors",
    "check_built",
    "check_requirements",
    "installed",
    "unavailable_detectors",
]


@dataclass(frozen=True, slots=True)
class Requirement:
    """A part of a detector that needs a package from an extra."""

    detector: str
    module: str
    extra: str
    what: str
    setting: str
    #: the settings ask for the part (explicitly or by default)
    wanted: Callable[[Settings], bool]
    #: the settings ask for it explicitly (not only by a default)
    explicit: Callable[[Settings], bool]


#: What the detectors need beyond the core dependencies. (The content model needs numpy,
#: which is a core dependency: scoring with the shipped model works on a plain install.)
REQUIRES: tuple[Requirement, ...] = (
    Requirement(
        "attachments", "oletools", "attachments", "Office macro scanning",
        "[attachments] macro_extensions",
        wanted=lambda s: bool(s.attachments.macro_extensions),
        explicit=lambda s: "macro_extensions" in s.attachments.model_fields_set,
    ),
)


def _enabled(settings: Settings) -> list[str]:
    return [n for n in settings.detectors.enabled if n not in settings.detectors.disabled]


def _missing_detectors(settings: Settings) -> dict[str, str]:
    """Enabled detectors whose declaration requires a module that is not installed."""
    found = catalog()
    out: dict[str, str] = {}
    for name in dict.fromkeys(_enabled(settings)):
        need = found[name].requires if name in found else None
        if need is not None and not installed(need[0]):
            out[name] = (f"it needs {need[0]}, which is not installed "
                         f"(pip install 'mailsift[{need[1]}]')")
    return out


def _missing(settings: Settings) -> list[Requirement]:
    enabled = set(_enabled(settings))
    return [r for r in REQUIRES
            if r.detector in enabled and r.wanted(settings) and not installed(r.module)]


def unavailable_detectors(settings: Settings) -> dict[str, str]:
    """Detectors and detector parts that are on by default but left out because their extra is
    missing -> one line saying so and what to install. (Asked for explicitly, they fail
    startup.)"""
    whole = {} if "enabled" in settings.detectors.model_fields_set else {
        name: f"detector {name!r} is off: {why}"
        for name, why in _missing_detectors(settings).items()}
    return whole | {f"{r.detector}.{r.module}": (
        f"{r.what} ({r.detector} detector) is off: it needs {r.module}, which is not installed "
        f"(pip install 'mailsift[{r.extra}]', or set {r.setting} = [] to turn it off)")
        for r in _missing(settings) if not r.explicit(settings)}


def check_requirements(settings: Settings) -> None:
    """Fail startup when the settings explicitly ask for a part whose extra is missing."""
    explicit = [r for r in _missing(settings) if r.explicit(settings)]
    if explicit:
        raise ConfigError("; ".join(
            f"{r.setting} asks for {r.what}, but {r.module} is not installed; install "
            f"'mailsift[{r.extra}]' or set {r.setting} = []" for r in explicit),
            source=explicit[0].detector)


def check_built(spec: DetectorSpec, detector: object) -> Detector:
    """``detector`` as its declaration says it is, or a ``ConfigError`` saying how it is not."""
    if not isinstance(detector, Detector):
        raise ConfigError(f"detector {spec.name!r}: its factory returned a "
                          f"{type(detector).__name__}, which lacks name/stage/codes/run/versions",
                          source="detectors")
    problems = []
    if detector.name != spec.name:
        problems.append(f"it is named {detector.name!r}")
    if detector.stage != spec.stage:
        problems.append(f"its stage is {detector.stage}, the declaration says {spec.stage}")
    if not spec.dynamic_codes or spec.dynamic_prefixes:
        undeclared = sorted(c for c in set(detector.codes) - set(spec.codes)
                            if not c.startswith(spec.dynamic_prefixes))
        if undeclared:
            problems.append(f"it emits undeclared code(s) {', '.join(undeclared)}")
    if problems:
        raise ConfigError(f"detector {spec.name!r} does not match its declaration: "
                          + "; ".join(problems), source="detectors")
    return detector


def _check_sections(specs: Iterable[DetectorSpec]) -> None:
    """A detector may declare one of mailsift's own sections (``[history]``, ``[auth]``...) only
    with the very model mailsift uses for it: two meanings of one section would be a trap."""
    for spec in specs:
        field = Settings.model_fields.get(spec.name)
        own = spec.settings
        if own is not None and field is not None and field.annotation is not own:
            raise ConfigError(f"detector {spec.name!r} declares settings {own.__name__}, but "
                              f"[{spec.name}] is mailsift's own section; rename the detector",
                              source="detectors")


def build_detectors(settings: Settings, services: Services) -> list[Detector]:
    found = catalog()
    enabled = _enabled(settings)
    unknown = [n for n in (*enabled, *settings.detectors.disabled) if n not in found]
    if unknown:
        raise ConfigError(f"unknown detector(s) {', '.join(unknown)}; installed: "
                          f"{', '.join(sorted(found.names()))}", source="detectors")
    _check_sections(found.specs[n] for n in dict.fromkeys(enabled))
    missing = _missing_detectors(settings)
    if missing and "enabled" in settings.detectors.model_fields_set:
        raise ConfigError("; ".join(f"[detectors] enabled names {n!r}, but {why}; install it or "
                                    f"remove {n!r} from the list" for n, why in missing.items()),
                          source="detectors")
    check_requirements(settings)
    out: list[Detector] = []
    for name in dict.fromkeys(enabled):
        if name in missing:
            continue  # said by the caller once (scan, config check|explain, serve's log)
        spec = found[name]
        out.append(check_built(spec, spec.factory(settings, services)))
    return out
