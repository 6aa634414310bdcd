"""The composition root: the one place that turns settings into running objects.

Everything else receives its collaborators; only this module knows how to build them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mailsift.config.schema import Settings
from mailsift.core.protocols import Resolver, SystemClock
from mailsift.detectors.base import Services
from mailsift.detectors.registry import build_detectors
from mailsift.pipeline import Authenticate, Pipeline, PrepareEnvelope

__all__ = ["GatewayParts", "ScanOptions", "build_gateway", "build_pipeline",
           "build_report_sender"]


@dataclass(frozen=True)
class ScanOptions:
    """Per-invocation choices that are not settings (command-line flags)."""

    offline: bool | None = None
    dns_server: str | None = None
    rollout: Any = None  # RolloutState from the registry (None: only what config names)


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
    from functools import partial

    from mailsift.auth import envelope_from_relays

    return partial(_from_relays, envelope_from_relays, settings.auth.trusted_relays)


def _from_relays(fn: Any, relays: tuple[str, ...], msg: Any, env: Any) -> Any:
    return fn(msg, env, relays)


def build_pipeline(settings: Settings, options: ScanOptions | None = None) -> Pipeline:
    options = options or ScanOptions()
    offline = settings.scan.offline if options.offline is None else options.offline
    resolver = None if offline else _resolver(settings, options)
    extras = {"rollout": options.rollout} if options.rollout is not None else {}
    services = Services(resolver=resolver, clock=SystemClock(), extras=extras)
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


@dataclass
class GatewayParts:
    """Everything ``mailsift serve`` runs, built from settings in one place."""

    settings: Settings
    store: Any
    scans: Any
    gateway: Any
    recorder: Any
    relays: Any
    rollout: Any = None
    watcher: Any = None

    async def aclose(self) -> None:
        """Close in dependency order: relays, the relay journal, the trace recorder (it flushes
        to the store), the scan pool, the store."""
        await self.relays.close()
        if self.gateway.deliverer.journal is not None:
            self.gateway.deliverer.journal.close()
        await self.recorder.close()
        await self.scans.aclose()
        self.store.close()


def build_gateway(settings: Settings, *, workers: int | None = None,
                  options: ScanOptions | None = None) -> GatewayParts:
    """Open the store and build the scan pool, relay pool, spool and the gateway service."""
    import logging
    import time
    from pathlib import Path

    from mailsift.delivery.apply import Deliverer, RelayPool
    from mailsift.delivery.journal import RelayJournal
    from mailsift.delivery.recorder import AsyncRecorder
    from mailsift.delivery.spool import Spool
    from mailsift.detectors.registry import unavailable_detectors
    from mailsift.rollout.breaker import Breaker
    from mailsift.services.gateway import Gateway
    from mailsift.services.rollout import RolloutService
    from mailsift.services.rollout_watch import RolloutWatcher, make_counters
    from mailsift.services.scanning import ScanPool
    from mailsift.store.store import Store

    for line in unavailable_detectors(settings).values():
        logging.getLogger("mailsift.detectors").warning("%s", line)
    gw = settings.gateway
    if settings.history.backend == "memory":
        # The gateway learns in this process and scans in worker processes: they must share
        # the history, so a running gateway keeps it in a SQLite file under the data dir.
        history = settings.history.model_copy(update={
            "backend": "sqlite", "path": str(Path(settings.store.data_dir) / "history.sqlite3")})
        settings = settings.model_copy(update={"history": history})
    store = Store.open(settings.store)
    rollout = RolloutService(store, settings)
    rollout.adopt_builtins()  # a new release's pack and model: staged, not enforced (upgrades)
    rollout.note_policy()  # an unchecked [policy]/[ml] bands change: warned, audited, alerted
    options = replace(options or ScanOptions(), rollout=store.rollout.state())
    scans = ScanPool(settings, gw.workers if workers is None else workers, options,
                     timeout=gw.scan_timeout, queue_timeout=gw.queue_timeout)
    recorder = AsyncRecorder(store.trace)
    relays = RelayPool(gw.next_hop_host, gw.next_hop_port, gw.relay_connections,
                       gw.next_hop_timeout, helo=settings.smtp.hostname)
    spool = Spool(gw.spool_dir or Path(settings.store.data_dir) / "spool")
    journal = RelayJournal(spool.dir / "relayed.journal")

    def mark_delivered(ref: str, rcpts: set[str]) -> None:
        # almost always already so (the trace commit follows the journal by milliseconds):
        # read first, write only what a crash left behind
        statuses = store.trace.statuses(ref)
        for before in ("accepted", "deferred"):
            todo = {r for r in rcpts if statuses.get(r) == before}
            if todo:
                store.trace.set_status(ref, "delivered", todo, only_from=before)

    journal.reconcile(mark_delivered)
    deliverer = Deliverer(relays, recorder, spool, reject_text=gw.reject_text,
                          tempfail_text=gw.tempfail_text, junk_tag=gw.junk_subject_tag,
                          add_result_headers=gw.add_headers, journal=journal,
                          max_age=gw.spool_max_age_seconds, dsn=gw.dsn,
                          reporting_mta=settings.smtp.hostname)
    gateway = Gateway(store, scans, deliverer, recorder,
                      authserv_id=gw.authserv_id or settings.auth.authserv_id,
                      lists_refresh=gw.lists_refresh_seconds)
    parts = GatewayParts(settings, store, scans, gateway, recorder, relays, rollout)
    breaker = None
    if settings.rollout.breaker_enabled:
        breaker = Breaker(make_counters(settings.rollout.counters_url), settings.rollout,
                          time.time)
    parts.watcher = RolloutWatcher(parts, rollout, breaker)
    gateway.observers.append(parts.watcher.observe)
    gateway.observers.append(_history_learner(settings, recorder))
    _dmarc_reporting(settings, store, recorder, gateway)
    return parts


def _dmarc_reporting(settings: Settings, store: Any, recorder: Any, gateway: Any) -> None:
    """DMARC aggregate reporting in the gateway: record every evaluation (batched) and read
    the ``rua`` mailbox (docs/dmarc-reports.md)."""
    from mailsift.services.dmarc.evaluations import EvaluationRecorder
    from mailsift.services.dmarc.ingest import Ingestor
    from mailsift.services.dmarc.mailbox import ReportMailbox
    from mailsift.store.dmarc import DmarcStore

    conf = settings.dmarc_reports
    dmarc = DmarcStore(store.engine, store.clock)
    if conf.record:
        gateway.observers.append(EvaluationRecorder(
            dmarc, recorder.run_later, discovery=settings.auth.dmarc_discovery).observe)
    if conf.ingest_addresses:
        gateway.mailboxes.append(
            ReportMailbox(Ingestor(dmarc, conf), conf.ingest_addresses).observe)


def build_report_sender(settings: Settings, store: Any, *, dns_server: str | None = None,
                        clock: Any = None) -> Any:
    """The aggregate-report sender over ``store`` (``mailsift serve`` and the CLI)."""
    import socket

    from mailsift.auth import make_resolver
    from mailsift.core.errors import ConfigError
    from mailsift.delivery.relay import Relay
    from mailsift.services.dmarc.sending import ReportSender
    from mailsift.store.dmarc import DmarcStore

    conf = settings.dmarc_reports
    if not conf.email:
        raise ConfigError("[dmarc_reports] email is needed to send aggregate reports (their "
                          "From address, in a domain of ours that passes DMARC)")
    host = conf.relay_host or settings.gateway.next_hop_host
    port = conf.relay_port or settings.gateway.next_hop_port
    hostname = settings.smtp.hostname or socket.getfqdn()
    return ReportSender(
        DmarcStore(store.engine, store.clock), conf,
        receiver=conf.org_name or hostname,
        resolver=make_resolver(settings.dns, dns_server),
        relay_factory=lambda: Relay(host, port, timeout=conf.relay_timeout, helo=hostname),
        clock=clock or store.clock)


def _history_learner(settings: Settings, recorder: Any) -> Any:
    """An observer that teaches the sender history what was delivered (off the event loop)."""
    import time

    from mailsift.history import learn, open_history
    from mailsift.parsing import registrable_domain

    history = open_history(settings.history)

    def observe(result: Any) -> None:
        domain = registrable_domain(result.message.from_domain) if result.message.from_addr else ""
        recorder.run_later(lambda: learn(history, result, domain, time.time()))

    return observe
