"""Which detectors exist, and building the enabled ones.

Detectors are named explicitly in ``[detectors] enabled``; an unknown name fails startup (a typo
must not silently switch a check off). Modules are imported lazily so a detector with heavy
dependencies (the ML model) costs nothing unless enabled.

A detector whose optional dependency is not installed (``ml`` without the ``[ml]`` extra) is
never dropped silently: if ``[detectors] enabled`` names it explicitly, startup fails with a
``ConfigError`` naming the extra; if it is only on by default, it is left out and
``unavailable_detectors`` says so (``mailsift scan`` and ``config check|explain`` print it).
"""

from __future__ import annotations

import importlib

from mailsift.config.schema import Settings
from mailsift.core.errors import ConfigError
from mailsift.detectors.base import Detector, Services

__all__ = ["REGISTRY", "REQUIRES", "build_detectors", "unavailable_detectors"]

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

#: detector name -> (module it cannot run without, the extra that installs it)
REQUIRES: dict[str, tuple[str, str]] = {
    "ml": ("numpy", "ml"),
}


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
    out: dict[str, str] = {}
    for name in dict.fromkeys(_enabled(settings)):
        need = REQUIRES.get(name)
        if need is not None and not _importable(need[0]):
            out[name] = (f"it needs {need[0]}, which is not installed "
                         f"(pip install 'mailsift[{need[1]}]')")
    return out


def build_detectors(settings: Settings, services: Services) -> list[Detector]:
    enabled = _enabled(settings)
    unknown = [n for n in (*enabled, *settings.detectors.disabled) if n not in REGISTRY]
    if unknown:
        raise ConfigError(f"unknown detector(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(REGISTRY))}", source="detectors")
    missing = _missing(settings)
    if missing and "enabled" in settings.detectors.model_fields_set:
        raise ConfigError("; ".join(f"[detectors] enabled names {n!r}, but {why}; install it or "
                                    f"remove {n!r} from the list" for n, why in missing.items()),
                          source="detectors")
    out: list[Detector] = []
    for name in dict.fromkeys(enabled):
        if name in missing:
            continue  # said by the caller once (scan, config check|explain, serve's log)
        module = importlib.import_module(REGISTRY[name])
        out.append(module.build(settings, services))
    return out
