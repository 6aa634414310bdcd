"""The gateway use case: one message from the mail flow -> scan -> act -> observe -> answer.

``Gateway.handle`` is the one decision path of every mail-flow adapter: it cleans the message,
scans it (lists, rollout state), recognises a retry, lets an :class:`Enactor` act on the verdict
and then tells the observers (circuit breaker, shadow recorder, sender-history learner) about
every message that took effect. The adapters only translate: the SMTP content filter and the
before-queue proxy act by relaying or quarantining (``Deliverer``, through ``process``); the
milter acts by recording the message and answering its MTA (``hand_back``). The HTTP scan API
asks ``preview``: what the gateway would decide, with nothing recorded, delivered or counted.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mailsift.auth.relays import strip_forged_results
from mailsift.core.envelope import Envelope
from mailsift.core.lists import ListSnapshot
from mailsift.core.result import ScanResult
from mailsift.delivery.apply import Deliverer, Reply
from mailsift.delivery.headers import MAILSIFT_HEADER, mailsift_header, strip_headers
from mailsift.delivery.recorder import AsyncRecorder
from mailsift.mailflow.step import FlowStep
from mailsift.services.release_mark import ReleaseMarks, as_released, kept_release_mark
from mailsift.services.scanning import ScanPool
from mailsift.services.throttle import Deferral, Greylist, RateLimiter
from mailsift.store.store import Store

__all__ = ["Decided", "Enactor", "Gateway", "GatewayStats", "message_ref"]

log = logging.getLogger("mailsift.gateway")
_DONE = ("delivered", "quarantined", "released")
Answer = TypeVar("Answer")


@dataclass(frozen=True, slots=True)
class Decided:
    """A scanned message, ready to be acted on: its reference, the bytes it goes on with
    (foreign result headers removed), the scan result, when it arrived, the trace statuses
    of an earlier attempt (empty unless this is a retry) and, for a copy mailsift released
    whose signed mark verified, the release id (its release headers stay on the message)."""

    ref: str
    raw: bytes
    result: ScanResult
    received_at: float
    prior: Mapping[str, str]
    released: str | None = None


class Enactor(Protocol[Answer]):
    """How one adapter acts on a decided message and what it answers. ``act`` returns the
    answer; ``took_effect`` says whether the verdict was carried out (the observers learn only
    from those); ``already`` answers a retry of a message finished earlier (not acted on or
    observed again); ``failed`` answers when scanning (``stage = "scan"``) or acting failed."""

    async def act(self, decided: Decided) -> Answer: ...

    def took_effect(self, outcome: Answer, result: ScanResult) -> bool: ...

    async def already(self, ref: str, result: ScanResult | None) -> Answer: ...

    def failed(self, ref: str, stage: str) -> Answer: ...

    def deferred(self, ref: str, text: str) -> Answer:
        """Answers 4xx with ``text`` (greylisting): nothing was kept, the sender retries."""
        ...


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
        self.deferred = Counter("mailsift_deferred", "Messages or recipients answered 4xx by a "
                                "rate limit or greylisting", ["reason"], registry=self.registry)
        self.list_hits = Counter("mailsift_dnslist_hits", "Messages listed on a DNS list",
                                 ["code"], registry=self.registry)
        self.list_errors = Counter("mailsift_dnslist_errors", "Messages whose DNS list lookups "
                                   "failed or were refused (not counted as listings)", ["code"],
                                   registry=self.registry)

    def observe(self, result: ScanResult | None, seconds: float) -> None:
        if result is not None:
            self.messages.labels(result.verdict.category.value,
                                 result.verdict.action.value).inc()
            for f in result.findings:
                if f.code in ("DETECTOR_ERROR", "DETECTOR_TIMEOUT"):
                    self.detector_errors.labels(f.detector).inc()
                elif f.code.startswith(("RBL_", "URIBL_")):
                    self.list_hits.labels(f.code).inc()
                elif f.code in ("REPUTATION_DNS_ERROR", "REPUTATION_LIST_REFUSED"):
                    self.list_errors.labels(f.code).inc()
        self.latency.observe(seconds)


class Gateway:
    def __init__(self, store: Store, scans: ScanPool, deliverer: Deliverer,
                 recorder: AsyncRecorder, *, authserv_id: str, lists_refresh: float = 10.0,
                 clock: Callable[[], float] = time.time,
                 observers: Sequence[Callable[[ScanResult], None]] = (),
                 flow: FlowStep | None = None) -> None:
        self.store = store
        self.flow = flow  # direction and mail-flow rules (mailflow/step.py)
        self.scans = scans
        self.deliverer = deliverer
        self.recorder = recorder
        self.authserv_id = authserv_id
        self.lists_refresh = lists_refresh
        self.clock = clock
        self.stats = GatewayStats()
        self.observers = list(observers)
        #: readers of accepted messages' bytes, after they took effect (the DMARC ``rua``
        #: mailbox); like observers, their failures never fail a message
        self.mailboxes: list[Callable[[ScanResult, bytes], None]] = []
        self._lists: ListSnapshot | None = None
        self._lists_at = 0.0
        self._lists_lock = asyncio.Lock()
        self._relaying = RelayEnactor(deliverer)
        #: connection-level defence (``[ratelimit]``, ``[greylist]``), set by the composition root
        self.ratelimit: RateLimiter | None = None
        self.greylist: Greylist | None = None
        #: told of every outbound message held back by its sender's rate limit (the
        #: compromised-account monitor)
        self.limited: list[Callable[[ScanResult, Deferral], None]] = []

    async def admit_recipient(self, envelope: Envelope, rcpt: str, *, user: str | None = None,
                              first: bool = False) -> Deferral | None:
        """RCPT time: rate limits by client IP, envelope sender and authenticated user (once per
        transaction, at its ``first`` recipient) and by recipient. A deferral is counted in
        ``/metrics`` and answered 4xx by the adapter; the sender retries later."""
        limiter = self.ratelimit
        if limiter is None or not limiter.active:
            return None
        ip = envelope.client_ip
        checks: list[tuple[str, str | None]] = [("recipient", rcpt)]
        if first:
            checks = [("client_ip", ip), ("sender", envelope.mail_from), ("user", user), *checks]
        for key, value in checks:
            deferral = await limiter.check(key, value, ip)
            if deferral is not None:
                self.stats.deferred.labels(deferral.reason).inc()
                log.info("deferred from=<%s> rcpt=<%s> ip=%s: %s", envelope.mail_from or "",
                         rcpt, ip or "-", deferral.reason)
                return deferral
        return None

    def clean_incoming(self, raw: bytes) -> bytes:
        """Drop headers outsiders must not set: our result headers and forged A-R headers
        (our release marks stay on a genuine released copy: see ``services/release_mark``)."""
        return self._clean(raw, self.release_marks.verify(raw))

    def _clean(self, raw: bytes, released: str | None) -> bytes:
        drop = mailsift_header if released is None else kept_release_mark
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
        return await self._scan(raw, envelope, ref, self.release_marks.verify(raw))

    async def _scan(self, raw: bytes, envelope: Envelope, ref: str,
                    released: str | None) -> ScanResult:
        result = await self.scans.scan(raw, envelope, ref, await self.lists())
        # a copy we released (its signed mark verified): not quarantined again
        return result if released is None else as_released(result, released)

    def observe(self, result: ScanResult) -> None:
        """Tell the circuit breaker and the shadow recorder about a decided message."""
        for observer in self.observers:
            try:
                observer(result)
            except Exception as exc:  # counting must never fail a message
                log.warning("observer failed: %s", exc)

    def _to_mailboxes(self, result: ScanResult, raw: bytes) -> None:
        for mailbox in self.mailboxes:
            try:
                mailbox(result, raw)
            except Exception as exc:
                log.warning("mailbox reader failed: %s", exc)

    async def preview(self, raw: bytes, envelope: Envelope) -> ScanResult:
        """What the gateway would decide for this message (HTTP scan API): the same cleaning,
        lists and rollout state as ``handle``; nothing is recorded, delivered or observed."""
        released = self.release_marks.verify(raw)
        clean = self._clean(raw, released)
        ctx = self.flow.before(clean, envelope) if self.flow is not None else None
        result = await self._scan(ctx.raw if ctx else clean, envelope,
                                  message_ref(raw, envelope), released)
        return self.flow.after(ctx, result, ctx.raw)[0] if self.flow and ctx else result

    async def hand_back(self, decided: Decided, status: str) -> None:
        """The MTA keeps (or drops) the message itself (milter): record it once, durably, then
        set every recipient's trace status to what the MTA was told. Durable before the answer:
        a quarantined message's raw bytes are in the blob store once this returns."""
        if not decided.prior:
            await self.recorder.record(decided.result, decided.raw, decided.received_at)
        await self.recorder.set_status(decided.ref, status)

    async def handle(self, raw: bytes, envelope: Envelope, enactor: Enactor[Answer]) -> Answer:
        """Scan, act (through the adapter's ``enactor``), observe, answer: every adapter's path."""
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
            released = self.release_marks.verify(raw)  # once: cleaning and the verdict use it
            clean = self._clean(raw, released)
            ctx = self.flow.before(clean, envelope) if self.flow is not None else None
            clean = ctx.raw if ctx is not None else clean
            scan_error: Exception | None = None
            try:
                result = await self._scan(clean, envelope, ref, released)
                if self.flow is not None and ctx is not None:
                    result, clean = self.flow.after(ctx, result, clean)
            except Exception as exc:
                scan_error = exc
            prior = await looked_up
            if prior and all(s in _DONE for s in prior.values()):
                done, result = result, None  # counted when it was first accepted
                return await enactor.already(ref, done)
            if result is None:
                self.stats.errors.inc()
                log.error("scan of %s failed: %s", ref, scan_error)
                return enactor.failed(ref, "scan")
            if self.greylist is not None and not prior and released is None:
                deferral = await self.greylist.check(result, await self.lists())
                if deferral is not None:
                    self.stats.deferred.labels(deferral.reason).inc()
                    log.info("%s greylisted from=<%s> ip=%s", ref, envelope.mail_from or "",
                             envelope.client_ip or "-")
                    result = None  # answered 4xx: not a scanned message in the metrics
                    return enactor.deferred(ref, deferral.text)
            deferral = await self._outbound_limit(result) if not prior else None
            if deferral is not None:
                result = None  # answered 4xx: the MTA in front keeps it and retries
                return enactor.deferred(ref, deferral.text)
            outcome = await enactor.act(Decided(ref, clean, result, received_at, prior,
                                                   released))
            if enactor.took_effect(outcome, result):
                self.observe(result)
                self._to_mailboxes(result, clean)
            log.info("%s from=<%s> rcpt=%s %s/%s -> %s", ref, envelope.mail_from or "",
                     ",".join(envelope.rcpt_to), result.verdict.category.value,
                     result.verdict.action.value,
                     getattr(outcome, "code", None) or getattr(outcome, "kind", outcome))
            return outcome
        except Exception as exc:  # the store or the spool failed: the client must keep the mail
            self.stats.errors.inc()
            log.exception("processing %s failed: %s", ref, exc)
            return enactor.failed(ref, "local")
        finally:
            if not looked_up.done():  # cancelled mid-scan: nobody will read the answer
                looked_up.cancel()
            elif not looked_up.cancelled():
                looked_up.exception()  # a failed look-up after an earlier failure: seen, not news
            self.stats.in_flight.dec()
            self.stats.observe(result, time.perf_counter() - started)

    async def _outbound_limit(self, result: ScanResult) -> Deferral | None:
        """``outbound_sender`` rate limits: an outbound message over its sender's limit is
        answered 4xx, never relayed nor dropped (docs/connection-defence.md)."""
        limiter = self.ratelimit
        if limiter is None or result.verdict.direction != "outbound":
            return None
        env = result.envelope
        sender = env.mail_from or (result.message.from_addr.addr
                                   if result.message.from_addr else "")
        deferral = await limiter.outbound(sender, env.client_ip)
        if deferral is not None:
            self.stats.deferred.labels(deferral.reason).inc()
            log.warning("%s deferred: outbound sender <%s> over its rate limit", result.id,
                        sender)
            for listener in self.limited:
                listener(result, deferral)
        return deferral

    async def process(self, raw: bytes, envelope: Envelope) -> Reply:
        """Handle one message of the SMTP flow (content filter, proxy) and say what to answer."""
        return await self.handle(raw, envelope, self._relaying)


class RelayEnactor:
    """The SMTP flow acts by relaying, quarantining or spooling each recipient's copy."""

    def __init__(self, deliverer: Deliverer) -> None:
        self.deliverer = deliverer

    async def act(self, decided: Decided) -> Reply:
        return await self.deliverer.apply(decided.result, decided.raw, decided.ref,
                                          decided.received_at, decided.prior)

    def took_effect(self, outcome: Reply, result: ScanResult) -> bool:
        # 250: relayed or quarantined; 5xx only when we rejected (a next hop's 5xx is theirs)
        return outcome.code == 250 or (outcome.code >= 500
                                       and result.verdict.action.value == "reject")

    async def already(self, ref: str, result: ScanResult | None) -> Reply:
        return Reply(250, f"2.0.0 Ok: already accepted as {ref}")

    def failed(self, ref: str, stage: str) -> Reply:
        what = "scanning" if stage == "scan" else "local"
        return Reply(451, f"4.3.0 Temporary {what} problem, try again later (ref {ref})")

    def deferred(self, ref: str, text: str) -> Reply:
        return Reply(451, text)
