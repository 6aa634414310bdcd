"""All store-backed use cases built on one ``Store``: what the CLI, the API and the UI use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mailsift.config.schema import Settings
from mailsift.config.store import StoreSettings
from mailsift.core.protocols import Clock
from mailsift.delivery.relay import Relay
from mailsift.services.alerts import Alerter
from mailsift.services.audit import AuditService
from mailsift.services.bulk_release import BulkReleaser
from mailsift.services.lists import ListService
from mailsift.services.quarantine import QuarantineService
from mailsift.services.quarantine_policy import QuarantinePolicies
from mailsift.services.release import ReleaseService, RescanFn
from mailsift.services.reports import ReportService
from mailsift.services.retention import RetentionService
from mailsift.services.tokens import TokenService
from mailsift.services.trace import TraceService
from mailsift.services.users import UserService
from mailsift.store import Store

__all__ = ["StoreServices"]


@dataclass(frozen=True)
class StoreServices:
    store: Store
    quarantine: QuarantineService
    release: ReleaseService
    bulk: BulkReleaser
    lists: ListService
    trace: TraceService
    audit: AuditService
    retention: RetentionService
    tokens: TokenService
    users: UserService
    reports: ReportService

    @classmethod
    def build(cls, store: Store, *, rescan: RescanFn | None = None,
              relay_factory: Callable[[], Relay] | None = None,
              settings: Settings | None = None) -> StoreServices:
        """With ``settings`` alerts (a forced wide list entry) also go to the configured
        webhook and mail; without, they are stored and logged."""
        release = ReleaseService(store, relay_factory=relay_factory, rescan=rescan)
        alert = Alerter(store, settings).raise_alert if settings is not None else None
        lists = ListService(store, alert=alert)
        policies = QuarantinePolicies(settings.enduser.access if settings else None)
        return cls(store, QuarantineService(store, policies), release, BulkReleaser(release),
                   lists, TraceService(store), AuditService(store),
                   RetentionService(store), TokenService(store), UserService(store),
                   ReportService(store, release, lists))

    @classmethod
    def open(cls, settings: Settings | StoreSettings, *, clock: Clock | None = None,
             rescan: RescanFn | None = None,
             relay_factory: Callable[[], Relay] | None = None) -> StoreServices:
        conf = settings.store if isinstance(settings, Settings) else settings
        return cls.build(Store.open(conf, clock=clock), rescan=rescan,
                         relay_factory=relay_factory,
                         settings=settings if isinstance(settings, Settings) else None)

    def close(self) -> None:
        self.store.close()
