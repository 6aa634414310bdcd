"""The composition root: the one place that turns settings into the running gateway.

Everything else receives its collaborators; only this module knows how the gateway's parts fit
together (store, scan pool, relays, spool and journal, the gateway use case, rollout and its
watcher, the sender-history learner). One scan pipeline is built by ``mailsift.pipeline.build``,
which the scan workers, the rollout gate and ``mailsift scan`` use as well; nothing below this
module imports it. It needs the ``[server]`` extra, like ``mailsift serve``.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from mailsift.auth import make_resolver
from mailsift.config.schema import Settings
from mailsift.core.errors import ConfigError
from mailsift.core.protocols import Clock
from mailsift.core.result import ScanResult
from mailsift.core.rollout import RolloutState
from mailsift.delivery.apply import Deliverer, RelayPool
from mailsift.delivery.journal import RelayJournal
from mailsift.delivery.recorder import AsyncRecorder
from mailsift.delivery.relay import Relay
from mailsift.delivery.spool import Spool
from mailsift.detectors.registry import unavailable_detectors
from mailsift.history import SenderHistory, learn, learn_many, open_history
from mailsift.mailflow.step import FlowStep
from mailsift.mailflow.versions import CONFIG_VERSION, flow_version
from mailsift.parsing import registrable_domain
from mailsift.pipeline.build import ScanOptions
from mailsift.rollout.breaker import Breaker
from mailsift.services.alerts import Alerter
from mailsift.services.compromise import ALERT_KIND, CompromiseMonitor
from mailsift.services.connstate import ConnState, make_conn_state
from mailsift.services.dmarc.evaluations import EvaluationRecorder
from mailsift.services.dmarc.ingest import Ingestor
from mailsift.services.dmarc.mailbox import ReportMailbox
from mailsift.services.dmarc.sending import ReportSender
from mailsift.services.gateway import Gateway
from mailsift.services.list_health import ListHealth
from mailsift.services.rollout import RolloutService
from mailsift.services.rollout.watch import RolloutWatcher, make_counters
from mailsift.services.scanning import ScanPool
from mailsift.services.throttle import Greylist, RateLimiter
from mailsift.store.dmarc import DmarcStore
from mailsift.store.store import Store

__all__ = ["GatewayParts", "build_gateway", "build_report_sender"]


@dataclass
class GatewayParts:
    """Everything ``mailsift serve`` runs, built from settings in one place."""

    settings: Settings
    store: Store
    scans: ScanPool
    gateway: Gateway
    recorder: AsyncRecorder
    relays: RelayPool
    rollout: RolloutService
    watcher: RolloutWatcher
    conn_state: ConnState | None = None  # rate-limit / greylist state (Redis or memory)

    async def aclose(self) -> None:
        """Close in dependency order: connection state, relays, the relay journal, the trace
        recorder (it flushes to the store), the scan pool, the store."""
        if self.conn_state is not None:
            await self.conn_state.aclose()
        await self.relays.close()
        if self.gateway.deliverer.journal is not None:
            self.gateway.deliverer.journal.close()
        await self.recorder.close()
        await self.scans.aclose()
        self.store.close()


def build_gateway(settings: Settings, *, workers: int | None = None,
                  options: ScanOptions | None = None) -> GatewayParts:
    """Open the store and build the scan pool, relay pool, spool and the gateway service."""
    for line in unavailable_detectors(settings).values():
        logging.getLogger("mailsift.detectors").warning("%s", line)
    gw = settings.gateway
    if settings.history.backend == "memory":
        # The gateway learns in this process and scans in worker processes: they must share
        # the history. With a PostgreSQL store every node shares it too, in the store's
        # database; a single node keeps it in a SQLite file under the data dir.
        if settings.store.database_url().startswith("postgresql"):
            shared = {"backend": "database", "url": settings.store.database_url(),
                      "db_schema": settings.store.db_schema}
        else:
            shared = {"backend": "sqlite",
                      "path": str(Path(settings.store.data_dir) / "history.sqlite3")}
        settings = settings.model_copy(update={
            "history": settings.history.model_copy(update=shared)})
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
                          reporting_mta=settings.smtp.hostname,
                          strip_outbound=settings.direction.strip_outbound_headers)
    flow = _flow_step(settings, options.rollout)
    gateway = Gateway(store, scans, deliverer, recorder,
                      authserv_id=gw.authserv_id or settings.auth.authserv_id,
                      lists_refresh=gw.lists_refresh_seconds, flow=flow)
    breaker = None
    if settings.rollout.breaker_enabled:
        breaker = Breaker(make_counters(settings.rollout.counters_url), settings.rollout,
                          time.time)
    watcher = RolloutWatcher(rollout, scans, recorder, breaker)
    gateway.observers.append(watcher.observe)
    watcher.listeners.append(lambda state: setattr(gateway, "flow", _flow_step(settings, state)))
    sender_history = open_history(settings.history)
    gateway.observers.append(_history_learner(settings, sender_history, recorder))
    parts = GatewayParts(settings, store, scans, gateway, recorder, relays, rollout, watcher)
    _connection_defence(settings, parts, sender_history)
    _compromise_monitor(settings, parts)
    _dmarc_reporting(settings, store, recorder, gateway)
    return parts


def _flow_step(settings: Settings, state: RolloutState | None) -> FlowStep:
    """The flow rules the registry enforces (its active ``mailflow:rules`` version, canary and
    shadow versions beside it), or the configuration's while the registry has none."""
    step = FlowStep.for_state(settings.direction, settings.mailflow, state,
                              trust_received=settings.smtp.mode == "after_queue")
    declared = flow_version(settings.mailflow)
    if step.enforced.version not in (CONFIG_VERSION, declared):
        logging.getLogger("mailsift.mailflow").warning(
            "the configuration's flow rules (version %s) are not the enforced ones (registry "
            "version %s): stage them with 'mailsift mailflow stage' to gate and promote them",
            declared, step.enforced.version)
    return step


def _dmarc_reporting(settings: Settings, store: Store, recorder: AsyncRecorder,
                     gateway: Gateway) -> None:
    """DMARC aggregate reporting in the gateway: record every evaluation (batched) and read
    the ``rua`` mailbox (docs/dmarc-reports.md)."""
    conf = settings.dmarc_reports
    dmarc = DmarcStore(store.engine, store.clock)
    if conf.record:
        gateway.observers.append(EvaluationRecorder(
            dmarc, recorder.run_later, discovery=settings.auth.dmarc_discovery).observe)
    if conf.ingest_addresses:
        gateway.mailboxes.append(
            ReportMailbox(Ingestor(dmarc, conf), conf.ingest_addresses).observe)


def build_report_sender(settings: Settings, store: Store, *, dns_server: str | None = None,
                        clock: Clock | None = None) -> ReportSender:
    """The aggregate-report sender over ``store`` (``mailsift serve`` and the CLI)."""
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


def _connection_defence(settings: Settings, parts: GatewayParts,
                        history: SenderHistory) -> None:
    """Rate limits and greylisting (state in Redis or memory) and the DNS-list health alert."""
    gateway, rl = parts.gateway, settings.ratelimit
    if rl.limits or settings.greylist.enabled:
        parts.conn_state = make_conn_state(rl.redis_url)
    if rl.limits and parts.conn_state is not None:
        gateway.ratelimit = RateLimiter(rl, parts.conn_state)
    if settings.greylist.enabled and parts.conn_state is not None:
        def known(sender: str, rcpt: str) -> bool:
            return history.pair(sender, rcpt) is not None

        gateway.greylist = Greylist(settings.greylist, parts.conn_state,
                                    key_prefix=rl.key_prefix, exempt_networks=rl.exempt_networks,
                                    known=known)
    rep = settings.reputation
    names = [x.name for x in (*rep.ip_lists, *rep.domain_lists) if x.enabled]
    if names:
        alerter = Alerter(parts.store, settings)

        def alert(subject: str, message: str) -> None:
            parts.recorder.run_later(lambda: alerter.raise_alert("dnslist", subject, message))

        health = ListHealth(names, alert, registry=gateway.stats.registry)
        gateway.observers.append(health.observe)


def _compromise_monitor(settings: Settings, parts: GatewayParts) -> None:
    """Alerts on accounts of ours sending like compromised ones (services/compromise.py);
    counted in the rate limits' Redis when configured, so every node adds to one count."""
    if not settings.direction.accepted_domains or not settings.direction.compromise.enabled:
        return
    if parts.conn_state is None:
        parts.conn_state = make_conn_state(settings.ratelimit.redis_url)
    alerts, recorder = parts.rollout.alerts, parts.recorder

    def alert(subject: str, message: str) -> None:
        recorder.run_later(lambda: alerts.raise_alert(ALERT_KIND, subject, message))

    monitor = CompromiseMonitor(settings.direction, parts.conn_state, alert,
                                prefix=settings.ratelimit.key_prefix)
    parts.gateway.observers.append(monitor.observe)
    parts.gateway.limited.append(monitor.held)


def _history_learner(settings: Settings, history: SenderHistory,
                     recorder: AsyncRecorder) -> Callable[[ScanResult], None]:
    """An observer that teaches the sender history what was delivered (off the event loop)."""
    if settings.history.backend != "database":
        # Learned a writer batch at a time: the first message since the last flush queues
        # one, which takes everything observed until it runs (one transaction, not one each).
        waiting: list[tuple[ScanResult, str]] = []
        taking = threading.Lock()

        def flush() -> None:
            with taking:
                batch = waiting[:]
                waiting.clear()
            learn_many(history, batch, time.time())

        def observe(result: ScanResult) -> None:
            domain = (registrable_domain(result.message.from_domain)
                      if result.message.from_addr else "")
            with taking:
                first = not waiting
                waiting.append((result, domain))
            if first:
                recorder.run_later(flush)

        return observe
    # A shared database: each learned message is a round trip per table, so it gets a thread
    # of its own instead of queueing between the trace's group commits on the writer thread.
    # Bounded: history is best-effort, so past _HISTORY_MAX_PENDING waiting messages it skips.
    pool = ThreadPoolExecutor(1, thread_name_prefix="history")
    pending = [0]
    lock = threading.Lock()
    log = logging.getLogger("mailsift.history")

    def run(result: ScanResult, domain: str) -> None:
        try:
            learn(history, result, domain, time.time())
        except Exception as exc:  # the database is away: forget this one, say so
            log.warning("sender history: cannot learn: %s", exc)
        finally:
            with lock:
                pending[0] -= 1

    def observe_shared(result: ScanResult) -> None:
        with lock:
            if pending[0] >= _HISTORY_MAX_PENDING:
                return
            pending[0] += 1
        domain = registrable_domain(result.message.from_domain) if result.message.from_addr else ""
        pool.submit(run, result, domain)

    return observe_shared


_HISTORY_MAX_PENDING = 2000
