"""Which detectors exist, and building the enabled ones.

Detectors are named explicitly in ``[detectors] enabled``; an unknown name fails startup (a typo
must not silently switch a check off). Modules are imported lazily so a detector with heavy
dependencies costs nothing unless enabled.

A part of a detector whose optional package is not installed (Office macro scanning without
the ``[attachments]`` extra) is never dropped silently: if the configuration asks for it
explicitly, startup fails with a ``ConfigError`` naming the extra; if it is only on by default,
``unavailable_detectors`` says what is off and what to install (``mailsift scan``,
``config check|explain`` print it, ``serve`` logs it as a warning), and the detector marks each
file it could not check.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from mailsift.config.schema import Settings
from mailsift.core.errors import ConfigError
from mailsift.detectors.base import Detector, Services

__all__ = [
    "REGISTRY",
    "REQUIRES",
    "Requirement",
    "build_detectors",
    "check_requirements",
    "installed",
    "unavailable_detectors",
]

#: detector name -> module providing ``build(settings, services) -> Detector``
REGISTRY: dict[str, str] = {
    "parse": "mailsift.detectors.parse",
    "auth": "mailsift.detectors.auth",
    "rules": "mailsift.detectors.rules",
    "links": "mailsift.detectors.links",
    "attachments": "mailsift.detectors.attachments",
    "impersonation": "mailsift.detectors.impersonation",
    "bulk": "mailsift.detectors.bulk",
    "history": "mailsift.detectors.history",
    "ml": "mailsift.detectors.ml",
    "reputation": "mailsift.detectors.reputation",
}


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


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (looked up, not imported: oletools costs ~0.25 s)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _enabled(settings: Settings) -> list[str]:
    return [n for n in settings.detectors.enabled if n not in settings.detectors.disabled]


def _missing(settings: Settings) -> list[Requirement]:
    enabled = set(_enabled(settings))
    return [r for r in REQUIRES
            if r.detector in enabled and r.wanted(settings) and not installed(r.module)]


def unavailable_detectors(settings: Settings) -> dict[str, str]:
    """Detector parts that are on by default but left out because their extra is missing ->
    one line saying so and what to install. (Asked for explicitly, they fail startup.)"""
    return {f"{r.detector}.{r.module}": (
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


def build_detectors(settings: Settings, services: Services) -> list[Detector]:
    enabled = _enabled(settings)
    unknown = [n for n in (*enabled, *settings.detectors.disabled) if n not in REGISTRY]
    if unknown:
        raise ConfigError(f"unknown detector(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(REGISTRY))}", source="detectors")
    check_requirements(settings)
    out: list[Detector] = []
    for name in dict.fromkeys(enabled):
        module = importlib.import_module(REGISTRY[name])
        out.append(module.build(settings, services))
    return out
