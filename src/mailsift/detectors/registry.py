"""Building the enabled detectors from the installed ones (``catalog``).

Detectors are named explicitly in ``[detectors] enabled`` (default: every installed detector
declared on by default); an unknown name fails startup (a typo must not silently switch a check
off). A detector module is imported when the catalog is read, which is why declarations keep
heavy imports (the ML model's numpy) inside their factory.

A detector whose optional dependency is not installed (``ml`` without the ``[ml]`` extra) is
never dropped silently: if ``[detectors] enabled`` names it explicitly, startup fails with a
``ConfigError`` naming the extra; if it is only on by default, it is left out and
``unavailable_detectors`` says so (``mailsift scan`` and ``config check|explain`` print it).

Every detector built is checked against its declaration: same name and stage, and no code it
says it may emit outside the declared ones (rule packs, whose codes are data, excepted).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from mailsift.config.schema import Settings
from mailsift.core.catalog import catalog
from mailsift.core.errors import ConfigError
from mailsift.detectors.base import Detector, Services
from mailsift.detectors.spec import DetectorSpec

__all__ = ["build_detectors", "unavailable_detectors"]


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _enabled(settings: Settings) -> list[str]:
    return [n for n in settings.detectors.enabled if n not in settings.detectors.disabled]


def unavailable_detectors(settings: Settings) -> dict[str, str]:
    """Enabled detectors left out because their extra is missing -> one line saying so and what
    to install. Empty when ``[detectors] enabled`` is explicit (then startup fails instead)."""
    if "enabled" in settings.detectors.model_fields_set:
        return {}
    return {name: f"detector {name!r} is off: {why}" for name, why in _missing(settings).items()}


def _missing(settings: Settings) -> dict[str, str]:
    found = catalog()
    out: dict[str, str] = {}
    for name in dict.fromkeys(_enabled(settings)):
        need = found[name].requires if name in found else None
        if need is not None and not _importable(need[0]):
            out[name] = (f"it needs {need[0]}, which is not installed "
                         f"(pip install 'mailsift[{need[1]}]')")
    return out


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
    if not spec.dynamic_codes:
        undeclared = sorted(set(detector.codes) - set(spec.codes))
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
    missing = _missing(settings)
    if missing and "enabled" in settings.detectors.model_fields_set:
        raise ConfigError("; ".join(f"[detectors] enabled names {n!r}, but {why}; install it or "
                                    f"remove {n!r} from the list" for n, why in missing.items()),
                          source="detectors")
    out: list[Detector] = []
    for name in dict.fromkeys(enabled):
        if name in missing:
            continue  # said by the caller once (scan, config check|explain, serve's log)
        spec = found[name]
        out.append(check_built(spec, spec.factory(settings, services)))
    return out
