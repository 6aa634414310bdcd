"""Scanning for the running gateway: a pool of worker processes, each with its own pipeline.

The scan is CPU-bound Python, so it runs in separate processes, fed from the event loop
(:mod:`.scan_workers`). Results come back slimmed (no bodies or attachment bytes) because the
gateway keeps the raw message itself. A worker that dies, or runs past the scan timeout, is
replaced; the caller gets an error it answers with a tempfail (the sending MTA keeps the mail).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from mailsift.config.schema import Settings
from mailsift.core.envelope import Envelope
from mailsift.core.errors import DetectorTimeout
from mailsift.core.lists import ListSnapshot
from mailsift.core.result import ScanResult
from mailsift.pipeline import Pipeline
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.services.scan_workers import WorkerPool, serve_requests

__all__ = ["ScanPool"]

log = logging.getLogger("mailsift.scan")
_pipeline: dict[str, Pipeline] = {}


def _init(settings: Settings, options: ScanOptions) -> None:
    _exit_with_parent()
    _pipeline["p"] = build_pipeline(settings, options)


def _exit_with_parent() -> None:
    """A worker must not outlive its gateway: after a kill -9 the pool's shutdown never runs.
    (A worker waiting for work sees its socket close; this also ends one that is mid-scan.)"""
    parent = multiprocessing.parent_process()
    if parent is None:  # in-process scanning (workers = 0)
        return

    def wait() -> None:
        parent.join()
        os._exit(0)

    threading.Thread(target=wait, name="mailsift-parent-watch", daemon=True).start()


def _scan(raw: bytes, envelope: Envelope, message_id: str,
          canary: Mapping[str, tuple[str, ...]] | None, lists: ListSnapshot | None) -> ScanResult:
    result = _pipeline["p"].scan(raw, envelope, message_id=message_id, lists=lists,
                                 canary_scopes=canary)
    return result.slim()


def _worker(conn: Connection, settings: Settings, options: ScanOptions) -> None:
    """A scan worker process: build the pipeline once, then scan what the gateway sends (the
    lists travel as the context: only when their version changes).

    Ctrl-C in a terminal interrupts the whole process group: the gateway stops its workers
    itself (their sockets close, or ``_exit_with_parent``), so a worker ignores SIGINT instead
    of dying mid-read with a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve_requests(conn, _handle, started=lambda: _init(settings, options))


def _handle(request: tuple[bytes, Envelope, str, Mapping[str, tuple[str, ...]] | None],
            lists: ListSnapshot | None) -> ScanResult:
    raw, envelope, message_id, canary = request
    return _scan(raw, envelope, message_id, canary, lists)


class ScanPool:
    """``await pool.scan(raw, envelope, message_id)`` from the event loop."""

    def __init__(self, settings: Settings, workers: int, options: ScanOptions | None = None,
                 *, timeout: float = 30.0, queue_timeout: float | None = None) -> None:
        self.settings = settings
        self.workers = workers
        self.options = options or ScanOptions()
        self.timeout = timeout
        #: how long a message may wait for a free worker (not part of ``timeout``)
        self.queue_timeout = timeout * 10 if queue_timeout is None else queue_timeout
        self._in_process = asyncio.Semaphore(1)
        self._executor = self._make()
        self._pipeline_versions: Mapping[str, str] | None = None

    def _make(self) -> ThreadPoolExecutor | WorkerPool:
        if self.workers == 0:
            # In-process (tests, tiny installs): one thread so the event loop stays responsive.
            _init(self.settings, self.options)
            return ThreadPoolExecutor(1, thread_name_prefix="mailsift-scan")
        return WorkerPool(self.workers, _worker, (self.settings, self.options))

    async def warm_up(self, timeout: float = 120.0) -> None:
        """Start every worker (import, load rules and models) before taking traffic.

        Starting a worker costs seconds on a loaded machine, far more than one scan may take, so
        the warm-up has its own, generous limit rather than the per-message scan timeout."""
        probe = (b"From: warm-up@localhost\r\nTo: warm-up@localhost\r\nSubject: warm-up\r\n"
                 b"Message-ID: <warm-up@localhost>\r\n\r\nwarm-up\r\n")
        await asyncio.gather(*(self.scan(probe, Envelope(), "warm-up",
                                         timeout=max(timeout, self.timeout))
                               for _ in range(max(1, self.workers))))

    async def scan(self, raw: bytes, envelope: Envelope, message_id: str,
                   lists: ListSnapshot | None = None,
                   canary: Mapping[str, tuple[str, ...]] | None = None,
                   *, timeout: float | None = None) -> ScanResult:
        limit = self.timeout if timeout is None else timeout
        request = (raw, envelope, message_id, canary)
        if isinstance(self._executor, WorkerPool):
            context = (lists.version, lists) if lists is not None else None
            result: ScanResult = await self._executor.call(
                request, limit, context, queue_timeout=max(self.queue_timeout, limit))
            return result
        # in-process: one scan at a time, and the wait for the thread is not the scan's time
        try:
            await asyncio.wait_for(self._in_process.acquire(), self.queue_timeout)
        except TimeoutError as exc:
            raise DetectorTimeout("scan", f"no scan thread free within "
                                  f"{self.queue_timeout:g} s") from exc
        try:
            future = asyncio.get_running_loop().run_in_executor(self._executor, _scan,
                                                                *request, lists)
            try:
                return await asyncio.wait_for(asyncio.shield(future), limit)
            except TimeoutError as exc:
                raise DetectorTimeout("scan", f"no result within {limit:.0f} s") from exc
        finally:
            if future.done():
                self._in_process.release()
            else:  # the thread is still busy with it: free the slot when it is done
                future.add_done_callback(lambda _f: self._in_process.release())

    def reload(self, options: ScanOptions) -> None:
        """Start new workers with new options (e.g. a new rollout state); scans already running
        finish on the old workers, new scans go to the new ones."""
        self.options = options
        if isinstance(self._executor, WorkerPool):
            self._executor.retire_all((self.settings, options))
        else:
            old = self._executor
            self._executor = self._make()
            old.shutdown(wait=False)

    async def aclose(self) -> None:
        """:meth:`close` from the event loop the workers were fed from."""
        if isinstance(self._executor, WorkerPool):
            await self._executor.aclose()
        else:
            self.close()

    def close(self) -> None:
        if isinstance(self._executor, WorkerPool):
            self._executor.close()
        else:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def describe(self) -> dict[str, Any]:
        return {"workers": self.workers, "timeout": self.timeout,
                "queue_timeout": self.queue_timeout}
