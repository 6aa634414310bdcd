"""Scanning for the running gateway: a pool of worker processes, each with its own pipeline.

The scan is CPU-bound Python, so it runs in separate processes (``spawn`` context: forking a
process that already runs an event loop and threads is unsafe). Results come back slimmed (no
bodies or attachment bytes) because the gateway keeps the raw message itself. A worker that dies
breaks the pool; the pool is rebuilt and the caller gets an error it answers with a tempfail.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from collections.abc import Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from mailsift.app import ScanOptions, build_pipeline
from mailsift.config.schema import Settings
from mailsift.core.envelope import Envelope
from mailsift.core.errors import DetectorTimeout
from mailsift.core.lists import ListSnapshot
from mailsift.core.result import ScanResult
from mailsift.pipeline import Pipeline

__all__ = ["ScanPool"]

log = logging.getLogger("mailsift.scan")
_pipeline: dict[str, Pipeline] = {}


def _init(settings: Settings, options: ScanOptions) -> None:
    _exit_with_parent()
    _pipeline["p"] = build_pipeline(settings, options)


def _exit_with_parent() -> None:
    """A worker must not outlive its gateway: after a kill -9 the pool's shutdown never runs,
    and the worker, holding both ends of its call queue, would wait for work forever."""
    parent = multiprocessing.parent_process()
    if parent is None:  # in-process scanning (workers = 0)
        return

    def wait() -> None:
        parent.join()
        os._exit(0)

    threading.Thread(target=wait, name="mailsift-parent-watch", daemon=True).start()


def _scan(raw: bytes, envelope: Envelope, message_id: str, lists: ListSnapshot | None,
          canary: Mapping[str, tuple[str, ...]] | None) -> ScanResult:
    result = _pipeline["p"].scan(raw, envelope, message_id=message_id, lists=lists,
                                 canary_scopes=canary)
    return result.slim()


class ScanPool:
    """``await pool.scan(raw, envelope, message_id)`` from the event loop."""

    def __init__(self, settings: Settings, workers: int, options: ScanOptions | None = None,
                 *, timeout: float = 30.0) -> None:
        self.settings = settings
        self.workers = workers
        self.options = options or ScanOptions()
        self.timeout = timeout
        self._executor: Executor = self._make()
        self._pipeline_versions: Mapping[str, str] | None = None

    def _make(self) -> Executor:
        if self.workers == 0:
            # In-process (tests, tiny installs): one thread so the event loop stays responsive.
            _init(self.settings, self.options)
            return ThreadPoolExecutor(1, thread_name_prefix="mailsift-scan")
        ctx = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init,
                                   initargs=(self.settings, self.options))

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
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, _scan, raw, envelope, message_id, lists,
                                      canary)
        try:
            return await asyncio.wait_for(future, limit)
        except TimeoutError as exc:
            raise DetectorTimeout("scan", f"no result within {limit:.0f} s") from exc
        except BrokenProcessPool:
            log.error("a scan worker died; restarting the pool")
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._make()
            raise

    def reload(self, options: ScanOptions) -> None:
        """Start new workers with new options (e.g. a new rollout state); scans already running
        finish on the old workers, new scans go to the new ones."""
        old = self._executor
        self.options = options
        self._executor = self._make()
        old.shutdown(wait=False)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def describe(self) -> dict[str, Any]:
        return {"workers": self.workers, "timeout": self.timeout}
