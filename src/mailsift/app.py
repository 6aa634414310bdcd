"""The composition root: the one place that turns settings into running objects.

Everything else receives its collaborators; only this module knows how to build them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailsift.config.schema import Settings
from mailsift.core.protocols import Resolver, SystemClock
from mailsift.detectors.base import Services
from mailsift.detectors.registry import build_detectors
from mailsift.pipeline import Authenticate, Pipeline

__all__ = ["ScanOptions", "build_pipeline"]


@dataclass(frozen=True)
class ScanOptions:
    """Per-invocation choices that are not settings (command-line flags)."""

    offline: bool | None = None
    dns_server: str | None = None


def _resolver(settings: Settings, options: ScanOptions) -> Resolver | None:
    from mailsift.auth import make_resolver

    return make_resolver(settings.dns, options.dns_server)


def _authenticator(settings: Settings, resolver: Resolver | None) -> Authenticate | None:
    if "auth" not in settings.detectors.enabled or "auth" in settings.detectors.disabled:
        return None
    from mailsift.auth import Authenticator

    return Authenticator(settings.auth, resolver).authenticate


def build_pipeline(settings: Settings, options: ScanOptions | None = None) -> Pipeline:
    options = options or ScanOptions()
    offline = settings.scan.offline if options.offline is None else options.offline
    resolver = None if offline else _resolver(settings, options)
    services = Services(resolver=resolver, clock=SystemClock())
    return Pipeline(
        build_detectors(settings, services),
        settings.policy,
        limits=settings.limits,
        authenticate=_authenticator(settings, resolver),
        timeout_ms=settings.detectors.timeout_ms,
        offline=offline,
        clock=services.clock,
    )
