"""The composition root: the one place that turns settings into the running gateway.

Everything else receives its collaborators; only this module knows how the gateway's parts fit
together (store, scan pool, relays, spool and journal, the gateway use case, rollout and its
watcher, the sender-history learner). One scan pipeline is built by ``mailsift.pipeline.build``,
which the scan workers, the rollout gate and ``mailsift scan`` use as well; nothing below this
module imports it. It needs the ``[server]`` extra, like ``mailsift serve``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mailsift.config.schema import Settings
from mailsift.core.result import ScanResult
from mailsift.delivery.apply import Deliverer, RelayPool
from mailsift.delivery.journal import RelayJournal
from mailsift.delivery.recorder import AsyncRecorder
from mailsift.delivery.spool import Spool
from mailsift.detectors.registry import unavailable_detectors
from mailsift.history import learn, open_history
from mailsift.mailflow.step import FlowStep
from mailsift.parsing import registrable_domain
from mailsift.pipeline.build import ScanOptions
from mailsift.rollout.breaker import Breaker
from mailsift.services.gateway import Gateway
from mailsift.services.rollout import RolloutService
from mailsift.services.rollout.watch import RolloutWatcher, make_counters
from mailsift.services.scanning import ScanPool
from mailsift.store.store import Store

__all__ = ["GatewayParts", "build_gateway"]


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
                          reporting_mta=settings.smtp.hostname,
                          strip_outbound=settings.direction.strip_outbound_headers)
    flow = FlowStep(settings.direction, settings.mailflow,
                    trust_received=settings.smtp.mode == "after_queue")
    gateway = Gateway(store, scans, deliverer, recorder,
                      authserv_id=gw.authserv_id or settings.auth.authserv_id,
                      lists_refresh=gw.lists_refresh_seconds, flow=flow)
    breaker = None
    if settings.rollout.breaker_enabled:
        breaker = Breaker(make_counters(settings.rollout.counters_url), settings.rollout,
                          time.time)
    watcher = RolloutWatcher(rollout, scans, recorder, breaker)
    gateway.observers.append(watcher.observe)
    gateway.observers.append(_history_learner(settings, recorder))
    return GatewayParts(settings, store, scans, gateway, recorder, relays, rollout, watcher)


def _history_learner(settings: Settings,
                     recorder: AsyncRecorder) -> Callable[[ScanResult], None]:
    """An observer that teaches the sender history what was delivered (off the event loop)."""
    history = open_history(settings.history)

    def observe(result: ScanResult) -> None:
        domain = registrable_domain(result.message.from_domain) if result.message.from_addr else ""
        recorder.run_later(lambda: learn(history, result, domain, time.time()))

    return observe
