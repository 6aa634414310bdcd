"""The end-user mail schedule run by ``mailsift serve``: digests, release-request notices and
``test_with_notify`` flow-rule notices (``services.flow_notices``).

Every node may run it: what each run sends is claimed in the store first
(``store.enduser``), so a digest or a notice goes out once whichever node gets there. A failed
run is logged and tried again at the next tick; it never stops the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from mailsift.config.mailflow import MailflowSettings
from mailsift.config.schema import Settings
from mailsift.services.digests import DigestService
from mailsift.services.flow_notices import FlowNotices
from mailsift.services.request_notices import RequestNotices
from mailsift.store import Store

__all__ = ["EndUserSchedule"]

log = logging.getLogger("mailsift.digests")


class EndUserSchedule:
    def __init__(self, store: Store, settings: Settings, *, node: str = "",
                 flow: Callable[[], MailflowSettings] | None = None) -> None:
        self.digests = DigestService(store, settings, node=node)
        self.notices = RequestNotices(store, settings, relay_factory=self.digests.relay_factory,
                                      node=self.digests.node)
        self.flow = FlowNotices(store, settings, flow or (lambda: settings.mailflow),
                                relay_factory=self.digests.relay_factory, node=self.digests.node)
        self.settings = settings

    async def tick(self) -> None:
        now = self.digests.store.clock.now()
        if self.settings.enduser.digest.enabled:
            await self.digests.run(now)
        await self.notices.run(self.digests.period(now))
        await self.flow.run()

    async def run(self, stop: asyncio.Event) -> None:
        every = self.settings.enduser.digest.check_seconds
        while not stop.is_set():
            try:
                await self.tick()
            except Exception as exc:  # the next tick tries again; the claims keep it exact
                log.warning("digest run failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
