"""Group commit of trace writes from the event loop.

Every message the gateway answers is recorded before the answer (quarantined ones with their
original, durably). One transaction per message would cap SQLite at a few hundred messages per
second, so writes queue up and a single writer thread commits whatever has accumulated in one
transaction: under load batches grow, idle latency stays one commit. The look-up the gateway
makes for every message (has this message been seen before?) rides the same queue: one query
answers every look-up of a batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mailsift.core.result import ScanResult
from mailsift.store.deliveries import Attempt, DeliveryLog
from mailsift.store.trace import Recordable, TraceStore

__all__ = ["AsyncRecorder"]

log = logging.getLogger("mailsift.store")
_MAX_BATCH = 256
# Work nobody waits for (a status queued with set_status_soon, run_later) rides with the next
# write somebody waits for, or goes alone after this long: under load that saves a
# transaction per message (the writer's CPU is mostly per-transaction overhead).
_RIDE_SECONDS = 0.05
_LAZY = ("status_soon", "later", "attempts")


class AsyncRecorder:
    def __init__(self, trace: TraceStore) -> None:
        self.trace = trace
        self.deliveries = DeliveryLog(trace.engine)
        self._queue: asyncio.Queue[tuple[str, Any, asyncio.Future[Any]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="mailsift-store")
        self._urgent: asyncio.Future[None] | None = None  # set when waited-for work arrives
        self._riding: list[tuple[str, Any, asyncio.Future[Any]]] = []

    def _ensure(self) -> asyncio.Queue[tuple[str, Any, asyncio.Future[Any]]]:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="recorder")
        return self._queue

    def _put(self, kind: str, item: Any, fut: asyncio.Future[Any]) -> None:
        self._ensure().put_nowait((kind, item, fut))
        if kind not in _LAZY and self._urgent is not None and not self._urgent.done():
            self._urgent.set_result(None)

    async def record(self, result: ScanResult, raw: bytes, received_at: float) -> None:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._put("record", Recordable(result, raw, received_at), fut)
        await fut

    async def set_status(self, message: str, status: str,
                         recipients: Iterable[str] | None = None) -> None:
        await self._status("status", message, status, recipients)

    def set_status_soon(self, message: str, status: str,
                        recipients: Iterable[str] | None = None) -> asyncio.Future[Any]:
        """Queue a status update and return its future without waiting for the commit (for a
        caller whose answer does not depend on it, see ``Deliverer``). It may wait up to
        ``_RIDE_SECONDS`` for a write somebody waits for, to share its transaction."""
        return self._status("status_soon", message, status, recipients)

    def _status(self, kind: str, message: str, status: str,
                recipients: Iterable[str] | None) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        rcpts = None if recipients is None else tuple(recipients)
        self._put(kind, (message, status, rcpts), fut)
        return fut

    def note_attempts(self, message: str, attempts: Iterable[Attempt]) -> asyncio.Future[Any]:
        """Queue delivery attempts (the next hop's replies) of ``message``; like
        ``set_status_soon`` nothing waits for them, and they share the next transaction."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._put("attempts", (message, tuple(attempts)), fut)
        return fut

    async def statuses(self, message: str) -> dict[str, str]:
        """Delivery status per recipient of ``message`` ({} when never recorded)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._put("lookup", message, fut)
        result: dict[str, str] = await fut
        return result

    def run_later(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the writer thread after the writes queued before it, without waiting
        (for work nobody waits for, such as teaching the sender history); errors are logged."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._put("later", fn, fut)

    async def call(self, fn: Callable[[], Any]) -> Any:
        """Run any other store call on the writer thread (keeps SQLite single-writer)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    def _commit(self, batch: list[tuple[str, Any, asyncio.Future[Any]]]) -> list[Any]:
        """Outcome per item: an exception, a look-up's answer, or ``None`` (written)."""
        outcomes: list[Any] = [None] * len(batch)
        lookups = [(i, item) for i, (kind, item, _) in enumerate(batch) if kind == "lookup"]
        if lookups:  # first: as if they had come before this batch's writes
            try:
                found = self.trace.statuses_many([item for _, item in lookups])
                for i, item in lookups:
                    outcomes[i] = found[item]
            except Exception as exc:
                for i, _ in lookups:
                    outcomes[i] = exc
        records = [(i, item) for i, (kind, item, _) in enumerate(batch) if kind == "record"]
        statuses = [(i, item) for i, (kind, item, _) in enumerate(batch)
                    if kind in ("status", "status_soon")]
        attempts = [(i, item) for i, (kind, item, _) in enumerate(batch) if kind == "attempts"]
        try:  # everything in one transaction: one commit, one fsync
            if records or statuses or attempts:
                self.trace.write_batch(
                    [item for _, item in records], [item for _, item in statuses],
                    [a.row(message) for _, (message, items) in attempts for a in items])
        except Exception as exc:  # one bad row must not fail the others: retry singly
            log.warning("batch trace write failed (%s); retrying one by one", exc)
            for i, item in records:
                try:
                    self.trace.record_many([item])
                except Exception as single:
                    outcomes[i] = single
            for i, (message, status, rcpts) in statuses:
                try:
                    self.trace.set_status(message, status, rcpts)
                except Exception as single:
                    outcomes[i] = single
            for i, (message, items) in attempts:
                try:
                    self.deliveries.add(message, items)
                except Exception as single:
                    outcomes[i] = single
        for kind, fn, _ in batch:
            if kind == "later":
                try:
                    fn()
                except Exception as exc:  # nobody waits for it: say so and go on
                    log.warning("deferred store work failed: %s", exc)
        return outcomes

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            self._drain(batch)
            if all(kind in _LAZY for kind, _, _ in batch):
                self._urgent = loop.create_future()
                self._riding = batch  # close() commits it if it stops us here
                try:
                    await asyncio.wait([self._urgent], timeout=_RIDE_SECONDS)
                finally:
                    self._urgent = None
                    self._riding = []
                self._drain(batch)
            outcomes = await loop.run_in_executor(self._thread, self._commit, batch)
            self._settle(batch, outcomes)

    def _drain(self, batch: list[tuple[str, Any, asyncio.Future[Any]]]) -> None:
        assert self._queue is not None
        while not self._queue.empty() and len(batch) < _MAX_BATCH:
            batch.append(self._queue.get_nowait())

    async def close(self) -> None:
        """Stop, after committing what is still queued (status updates nobody waited for)."""
        if self._task is not None:
            self._task.cancel()
        left, self._riding = self._riding, []
        while self._queue is not None and not self._queue.empty():
            left.append(self._queue.get_nowait())
        if left:
            outcomes = await asyncio.get_running_loop().run_in_executor(
                self._thread, self._commit, left)
            self._settle(left, outcomes)
        self._thread.shutdown(wait=True)

    @staticmethod
    def _settle(batch: list[tuple[str, Any, asyncio.Future[Any]]], outcomes: list[Any]) -> None:
        for (_, _, fut), outcome in zip(batch, outcomes, strict=True):
            if fut.done():
                continue
            if isinstance(outcome, Exception):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)
