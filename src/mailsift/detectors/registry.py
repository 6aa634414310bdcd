"""Which detectors exist, and building the enabled ones.

Detectors are named explicitly in ``[detectors] enabled``; an unknown name fails startup (a typo
must not silently switch a check off). Modules are imported lazily so a detector with heavy
dependencies (the ML model) costs nothing unless enabled.
"""

from __future__ import annotations

import importlib

from mailsift.config.schema import Settings
from mailsift.core.errors import ConfigError
from mailsift.detectors.base import Detector, Services

__all__ = ["REGISTRY", "build_detectors"]

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
}


def build_detectors(settings: Settings, services: Services) -> list[Detector]:
    enabled = [n for n in settings.detectors.enabled if n not in settings.detectors.disabled]
    unknown = [n for n in (*enabled, *settings.detectors.disabled) if n not in REGISTRY]
    if unknown:
        raise ConfigError(f"unknown detector(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(REGISTRY))}", source="detectors")
    out: list[Detector] = []
    for name in dict.fromkeys(enabled):
        module = importlib.import_module(REGISTRY[name])
        out.append(module.build(settings, services))
    return out
