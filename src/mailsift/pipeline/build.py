"""Building a scan pipeline from settings: resolver, authenticator, detectors, policy.

Not the composition root (``mailsift.app`` builds the running gateway): this is how one
pipeline is made, and several places need one of their own, each with the settings or rollout
state it judges by: every scan worker process, the rollout gate (the enforced set and the
candidate), incident release, ``mailsift scan`` and the evaluation harness. Keeping it here,
below the services, means none of them imports the composition root.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from mailsift.config.schema import Settings
from mailsift.core.protocols import Resolver
from mailsift.core.rollout import RolloutState
from mailsift.detectors.registry import build_detectors
from mailsift.detectors.services import detector_services
from mailsift.pipeline.runner import Authenticate, Pipeline, PrepareEnvelope

__all__ = ["ScanOptions", "build_pipeline"]


@dataclass(frozen=True)
class ScanOptions:
    """Per-invocation choices that are not settings (command-line flags)."""

    offline: bool | None = None
    dns_server: str | None = None
    rollout: RolloutState | None = None  # from the registry (None: only what config names)


def _resolver(settings: Settings, options: ScanOptions) -> Resolver | None:
    from mailsift.auth import make_resolver

    return make_resolver(settings.dns, options.dns_server)


def _authenticator(settings: Settings, resolver: Resolver | None) -> Authenticate | None:
    if "auth" not in settings.detectors.enabled or "auth" in settings.detectors.disabled:
        return None
    from mailsift.auth import Authenticator

    return Authenticator(settings.auth, resolver, dns_budget=settings.dns_budget()).authenticate


def _prepare_envelope(settings: Settings) -> PrepareEnvelope | None:
    if not settings.auth.trusted_relays:
        return None
    from mailsift.auth import envelope_from_relays

    return partial(envelope_from_relays, trusted_relays=settings.auth.trusted_relays)


def build_pipeline(settings: Settings, options: ScanOptions | None = None) -> Pipeline:
    options = options or ScanOptions()
    offline = settings.scan.offline if options.offline is None else options.offline
    resolver = None if offline else _resolver(settings, options)
    list_resolver = None
    if resolver is not None and settings.reputation.configured:
        # DNS lists get a resolver of their own (all questions of a message sent at once, no
        # threads): its cache and outage state are theirs, so a list that times out never
        # holds up authentication's questions.
        from mailsift.auth.batch import make_batch_resolver

        rep = settings.reputation
        own = bool(rep.nameservers)
        list_resolver = make_batch_resolver(
            rep.nameservers if own else settings.dns.nameservers,
            rep.port if own else settings.dns.port, server=options.dns_server,
            retry_after=min(settings.dns.timeout, settings.reputation.budget / 2),
            cache_size=settings.dns.cache_size)
    services = detector_services(settings, resolver, options.rollout, list_resolver)
    return Pipeline(
        build_detectors(settings, services),
        settings.policy,
        limits=settings.limits,
        authenticate=_authenticator(settings, resolver),
        timeout_ms=settings.detectors.timeout_ms,
        offline=offline,
        clock=services.clock,
        prepare_envelope=_prepare_envelope(settings),
        budgets_ms=settings.detectors.timeouts_ms,
        canary_scopes=options.rollout.canary_scopes() if options.rollout is not None else None,
    )
