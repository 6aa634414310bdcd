"""Rollout at run time, inside ``mailsift serve``: follow the registry, feed and run the circuit
breaker, and record shadow verdicts.

* Every ``poll`` seconds the registry's state version is read; when it changed (a promotion, a
  rollback, a breaker demotion on any node) the scan workers are restarted with the new state.
* Every scanned message is counted for the breaker; every ``check_seconds`` the breaker judges
  the windows and each trip is handled (demote, alert, incident). With Redis counters a lock
  makes one node act per check.
* Shadow verdicts (what a staged version would have done) are written in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from mailsift.core.result import ScanResult
from mailsift.core.rollout import RolloutState
from mailsift.delivery.recorder import AsyncRecorder
from mailsift.rollout.breaker import Breaker, Trip
from mailsift.rollout.counters import Counters, MemoryCounters, RedisCounters
from mailsift.services.rollout.service import RolloutService
from mailsift.services.scanning import ScanPool

__all__ = ["RolloutWatcher", "make_counters"]

log = logging.getLogger("mailsift.rollout")


def make_counters(url: str) -> Counters:
    return RedisCounters(url) if url else MemoryCounters()


def _most_specific(trips: list[Trip]) -> list[Trip]:
    """One cause, one incident: when a rule trips, its pack version and the category it fed
    usually trip with it; act on the rule and leave the rest (they are explained by it)."""
    rules = [t for t in trips if t.subject.startswith("rule:")]
    if rules:
        return rules
    artifacts = [t for t in trips if t.subject.startswith("artifact:")]
    return artifacts or trips


class RolloutWatcher:
    def __init__(self, service: RolloutService, scans: ScanPool, recorder: AsyncRecorder,
                 breaker: Breaker | None, *, poll: float = 2.0) -> None:
        self.service = service
        self.scans = scans
        self.recorder = recorder  # store calls go through its writer thread, off the loop
        self.breaker = breaker
        self.poll = poll
        self.version = service.state().version
        self._shadow: list[dict[str, Any]] = []
        self._cooldown: dict[str, float] = {}
        self.node = uuid.uuid4().hex[:8]
        self.trips: list[tuple[float, str, str | None]] = []
        #: told every new rollout state after the scan workers (the gateway's flow rules)
        self.listeners: list[Callable[[RolloutState], None]] = []

    # observers, called by the gateway for every decided message ---------------------------------
    def observe(self, result: ScanResult) -> None:
        if self.breaker is not None:
            self.breaker.observe(result)
        if result.shadow:
            now = time.time()
            for artifact, verdict in result.shadow.items():
                self._shadow.append({
                    "message_pk": result.id, "artifact": artifact, "at": now,
                    "actual_category": result.verdict.category.value,
                    "actual_action": result.verdict.action.value,
                    "category": verdict.category.value, "action": verdict.action.value,
                    "score": float(verdict.score)})

    async def _flush_shadow(self) -> None:
        rows, self._shadow = self._shadow, []
        if rows:
            await self.recorder.call(lambda: self.service.store.rollout.record_shadow(rows))

    async def reload_if_changed(self) -> bool:
        state = await self.recorder.call(self.service.state)
        if state.version == self.version:
            return False
        log.info("rollout state changed (%s -> %s): restarting scan workers", self.version,
                 state.version)
        self.version = state.version
        self.scans.reload(replace(self.scans.options, rollout=state))
        await self.scans.warm_up()
        for listener in self.listeners:
            listener(state)
        return True

    def _may_act(self) -> bool:
        counters = self.breaker.counters if self.breaker else None
        if isinstance(counters, RedisCounters):
            ttl = max(1, int(self.service.settings.rollout.check_seconds))
            return bool(counters.client.set("mailsift:breaker:lock", self.node, nx=True, ex=ttl))
        return True

    async def check_breaker(self) -> list[str]:
        """Judge the windows and handle trips; returns the incidents opened or extended."""
        if self.breaker is None:
            return []
        breaker = self.breaker
        loop = asyncio.get_running_loop()
        trips = _most_specific(
            await loop.run_in_executor(None, breaker.evaluate, self.service.young))
        incidents: list[str] = []
        now = time.time()
        window = breaker.settings.window_buckets * breaker.settings.bucket_seconds
        for trip in trips:
            if self._cooldown.get(trip.subject, 0) > now or not self._may_act():
                continue
            self._cooldown[trip.subject] = now + max(3600.0, window)
            incident = await self.recorder.call(
                partial(self.service.handle_trip, trip, window_seconds=window))
            self.trips.append((now, trip.subject, incident))
            if incident:
                incidents.append(incident)
        if incidents:
            await self.reload_if_changed()
            # Scans already under way when the demotion landed may have quarantined more.
            for incident in incidents:
                await self.recorder.call(partial(self.service.refresh_incident, incident))
        return incidents

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.service.settings.rollout
        last_check = time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll)
            try:
                await self._flush_shadow()
                await self.reload_if_changed()
                if settings.breaker_enabled and \
                        time.monotonic() - last_check >= settings.check_seconds:
                    last_check = time.monotonic()
                    await self.check_breaker()
            except Exception as exc:  # keep watching; the next round retries
                log.warning("rollout watcher: %s", exc)
