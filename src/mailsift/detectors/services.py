"""What detectors get from whoever builds a pipeline: one place that fills ``Services``.

The sender history and the feed set are opened once per process and configuration
(``shared_history``, ``shared_feeds``), so every detector that reads them, and every pipeline
rebuilt after a rollout change, shares one instance.
"""

from __future__ import annotations

from mailsift.auth.batch import BatchResolver
from mailsift.config.schema import Settings
from mailsift.core.protocols import Resolver, SystemClock
from mailsift.core.rollout import RolloutState
from mailsift.detectors.base import Services
from mailsift.detectors.feeds import shared_feeds
from mailsift.history.backends import shared_history

__all__ = ["detector_services"]


def detector_services(settings: Settings, resolver: Resolver | None,
                      rollout: RolloutState | None = None,
                      list_resolver: BatchResolver | None = None) -> Services:
    """The resolver, a clock, the process's sender history and feed set, the rollout
    registry's state and the DNS lists' own resolver."""
    return Services(resolver=resolver, clock=SystemClock(),
                    history=shared_history(settings.history), feeds=shared_feeds(settings.feeds),
                    rollout=rollout, list_resolver=list_resolver)
