"""The gateway use case: one message from the mail flow -> scan -> record -> deliver -> reply.

Shared by the SMTP content filter, the before-queue proxy and (for scanning and recording) the
milter and the HTTP API, so every entry point behaves the same.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import logging
import time
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mailsift.auth.relays import strip_forged_results
from mailsift.core.envelope import Envelope
from mailsift.core.lists import ListSnapshot
from mailsift.core.result import ScanResult
from mailsift.delivery.apply import Deliverer, Reply
from mailsift.delivery.headers import MAILSIFT_HEADER, mailsift_header, strip_headers
from mailsift.delivery.recorder import AsyncRecorder
from mailsift.services.release_mark import ReleaseMarks, as_released, kept_release_mark
from mailsift.services.scanning import ScanPool
from mailsift.store.store import Store

__all__ = ["Gateway", "GatewayStats", "message_ref"]

log = logging.getLogger("mailsift.gateway")
_DONE = ("delivered", "quarantined", "released")


def message_ref(raw: bytes, envelope: Envelope) -> str:
    """A reference that is the same when the same message is retried (same bytes, envelope):
    it keys the trace record, so a retry after a 4xx or a crash is recognised."""
    h = hashlib.sha256()
    h.update((envelope.mail_from or "").encode("utf-8", "surrogateescape") + b"\0")
    h.update(",".join(sorted(r.lower() for r in envelope.rcpt_to)).encode() + b"\0")
    h.update(raw)
    return "ms-" + base64.b32encode(h.digest()[:15]).decode().lower()


class GatewayStats:
    """Prometheus metrics of one gateway (own registry, so several gateways can coexist)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter("mailsift_messages", "Messages scanned, by category and action",
                                ["category", "action"], registry=self.registry)
        self.latency = Histogram(
            "mailsift_message_seconds", "Time from DATA to reply",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry)
        self.errors = Counter("mailsift_processing_errors", "Messages answered 4xx because of a "
                              "local problem (scan, store)", registry=self.registry)
        self.detector_errors = Counter("mailsift_detector_errors", "Detector errors and timeouts",
                                       ["detector"], registry=self.registry)
        self.in_flight = Gauge("mailsift_messages_in_flight", "Messages being processed",
                               registry=self.registry)
        self.spool = Gauge("mailsift_spool_depth", "Messages waiting in the retry spool",
                           registry=self.registry)

    def observe(self, result: ScanResult | None, seconds: float) -> None:
        if result is not None:
            self.messages.labels(result.verdict.category.value,
                                 result.verdict.action.value).inc()
            for f in result.findings:
                if f.code in ("DETECTOR_ERROR", "DETECTOR_TIMEOUT"):
                    self.detector_errors.labels(f.detector).inc()
        self.latency.observe(seconds)


class Gateway:
    def __init__(self, store: Store, scans: ScanPool, deliverer: Deliverer,
                 recorder: AsyncRecorder, *, authserv_id: str, lists_refresh: float = 10.0,
                 clock: Callable[[], float] = time.time,
                 observers: Sequence[Callable[[ScanResult], None]] = ()) -> None:
        self.store = store
        self.scans = scans
        self.deliverer = deliverer
        self.recorder = recorder
        self.authserv_id = authserv_id
        self.lists_refresh = lists_refresh
        self.clock = clock
        self.stats = GatewayStats()
        self.observers = list(observers)
        self._lists: ListSnapshot | None = None
        self._lists_at = 0.0
        self._lists_lock = asyncio.Lock()

    def clean_incoming(self, raw: bytes) -> bytes:
        """Drop headers outsiders must not set: our result headers and forged A-R headers
        (our release marks stay on a genuine released copy: see ``services/release_mark``)."""
        drop = mailsift_header if self.release_marks.verify(raw) is None else kept_release_mark
        raw = strip_headers(raw, drop, only_if=MAILSIFT_HEADER)
        return strip_forged_results(raw, self.authserv_id)

    @functools.cached_property
    def release_marks(self) -> ReleaseMarks:
        return ReleaseMarks.of(self.store.settings)

    async def lists(self) -> ListSnapshot:
        now = self.clock()
        if self._lists is None or now - self._lists_at > self.lists_refresh:
            async with self._lists_lock:
                if self._lists is None or now - self._lists_at > self.lists_refresh:
                    self._lists = await self.recorder.call(self.store.lists.snapshot)
                    self._lists_at = now
        assert self._lists is not None
        return self._lists

    async def prior_statuses(self, ref: str) -> dict[str, str]:
        statuses = await self.recorder.statuses(ref)
        journal = self.deliverer.journal
        if journal is not None and statuses:
            # relayed just before a crash, before the trace said so (see delivery/journal.py)
            statuses.update((r, "delivered") for r in journal.relayed(ref) if r in statuses)
        return statuses

    async def scan(self, raw: bytes, envelope: Envelope, ref: str) -> ScanResult:
        result = await self.scans.scan(raw, envelope, ref, await self.lists())
        released = self.release_marks.verify(raw)  # a copy we released: not quarantined again
        return result if released is None else as_released(result, released)

    def observe(self, result: ScanResult) -> None:
        """Tell the circuit breaker and the shadow recorder about a decided message."""
        for observer in self.observers:
            try:
                observer(result)
            except Exception as exc:  # counting must never fail a message
                log.warning("observer failed: %s", exc)

    async def process(self, raw: bytes, envelope: Envelope) -> Reply:
        """Handle one message of the SMTP flow and say what to answer."""
        started = time.perf_counter()
        received_at = self.clock()
        ref = message_ref(raw, envelope)
        self.stats.in_flight.inc()
        result: ScanResult | None = None
        # Has this message been accepted before (a retry)? The look-up waits for a store round
        # trip, so it runs while the message is scanned; a retry of a finished message (rare)
        # wastes that scan, every other message saves the wait.
        looked_up = asyncio.ensure_future(self.prior_statuses(ref))
        try:
            clean = self.clean_incoming(raw)
            scan_error: Exception | None = None
            try:
                result = await self.scan(clean, envelope, ref)
            except Exception as exc:
                scan_error = exc
            prior = await looked_up
            if prior and all(s in _DONE for s in prior.values()):
                result = None  # counted when it was first accepted
                return Reply(250, f"2.0.0 Ok: already accepted as {ref}")
            if result is None:
                self.stats.errors.inc()
                log.error("scan of %s failed: %s", ref, scan_error)
                return Reply(451, f"4.3.0 Temporary scanning problem, try again later (ref {ref})")
            reply = await self.deliverer.apply(result, clean, ref, received_at, prior)
            if reply.code == 250 or (reply.code >= 500 and result.verdict.action.value == "reject"):
                self.observe(result)
            log.info("%s from=<%s> rcpt=%s %s/%s -> %s", ref, envelope.mail_from or "",
                     ",".join(envelope.rcpt_to), result.verdict.category.value,
                     result.verdict.action.value, reply.code)
            return reply
        except Exception as exc:  # the store or the spool failed: the client must keep the mail
            self.stats.errors.inc()
            log.exception("processing %s failed: %s", ref, exc)
            return Reply(451, f"4.3.0 Temporary local problem, try again later (ref {ref})")
        finally:
            if not looked_up.done():  # cancelled mid-scan: nobody will read the answer
                looked_up.cancel()
            elif not looked_up.cancelled():
                looked_up.exception()  # a failed look-up after an earlier failure: seen, not news
            self.stats.in_flight.dec()
            self.stats.observe(result, time.perf_counter() - started)
