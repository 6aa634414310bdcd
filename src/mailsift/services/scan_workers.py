"""Scan worker processes, each fed directly from the gateway's event loop over its own socket.

Why not ``ProcessPoolExecutor``: it moves every call through two helper threads (a manager that
wakes per result and a feeder that pickles and writes), and those threads contend for the GIL
with the event loop. Measured under the SMTP benchmark, they were about a sixth of the
gateway's Python time. Here the loop pickles a request, writes it to an idle worker's socket and
reads the reply as a stream: no extra threads, and one request per worker at a time, so a
worker's socket always holds at most one message each way.

One in flight per worker (with a shared wait for an idle one) keeps the executor's fairness: a
slow message holds up only its own worker. It also makes a timeout unambiguous: the worker that
ran past it is the one that was scanning, so it is killed and replaced (an executor cannot stop
a worker stuck in a scan; this pool can). A worker that dies fails only its own message.

Requests and replies are pickled: both ends are our own processes over a private socket pair
(as with ``multiprocessing``); nothing received from outside is unpickled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import socket
import struct
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from mailsift.core.errors import DetectorError, DetectorTimeout

__all__ = ["ScanWorkerError", "WorkerPool"]

log = logging.getLogger("mailsift.scan")
_SIZE = struct.Struct("!i")  # multiprocessing.Connection's framing: 4-byte length, or -1 and 8
_BIG = struct.Struct("!Q")
_STREAM_LIMIT = 1 << 20


class ScanWorkerError(DetectorError):
    """A scan worker failed or died while scanning; the message must be deferred."""

    def __init__(self, message: str) -> None:
        super().__init__("scan", message)


def serve_requests(conn: Connection, handle: Callable[[Any, Any], Any],
                   started: Callable[[], None] = lambda: None) -> None:
    """A worker's loop: answer each pickled request with ``(ok, handle(request, context))``
    until the gateway closes its end (or dies: the kernel closes it then, so a worker never
    outlives it). The context (the allow/block lists) is kept from the last request that
    carried it; the gateway sends it again only when its key changes.

    A worker whose start-up fails (bad rules, a model that does not load) stays up and answers
    every request with that error, instead of dying and being restarted over and over."""
    broken = ""
    try:
        started()
    except Exception as exc:
        broken = f"scan worker could not start: {type(exc).__name__}: {exc}"[:500]
        log.error("%s", broken)
    context: Any = None
    while True:
        try:
            carried, value, request = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if carried:
            context = value
        reply: tuple[bool, Any] = (False, broken)
        if not broken:
            try:
                reply = (True, handle(request, context))
            except Exception as exc:  # reported to the gateway, which defers the message
                reply = (False, f"{type(exc).__name__}: {exc}"[:500])
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            data = pickle.dumps((False, f"unpicklable result: {exc}"[:500]))
        try:
            conn.send_bytes(data)
        except OSError:
            return


class _Worker:
    """One process and the loop's end of its socket."""

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection) -> None:
        self.process = process
        self._conn: Connection | None = conn
        self._reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.context_key: str | None = None  # the context this worker holds

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self.writer is None:
            assert self._conn is not None
            sock = socket.socket(fileno=os.dup(self._conn.fileno()))
            self._conn.close()
            self._conn = None
            self._reader, self.writer = await asyncio.open_unix_connection(
                sock=sock, limit=_STREAM_LIMIT)
        return self._reader, self.writer

    async def call(self, payload: bytes) -> bytes:
        reader, writer = await self._open()
        size = len(payload)
        writer.write(_SIZE.pack(size) if size < 0x7FFFFFFF
                     else _SIZE.pack(-1) + _BIG.pack(size))
        writer.write(payload)
        await writer.drain()
        (n,) = _SIZE.unpack(await reader.readexactly(4))
        if n == -1:
            (n,) = _BIG.unpack(await reader.readexactly(8))
        return await reader.readexactly(n)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.close()

    def close(self) -> None:
        """Closing our end makes an idle worker exit (end of file). The socket is shut down
        at once, not when the loop next runs: the caller may be about to wait for the exit."""
        if self.writer is not None:
            fd = self.writer.get_extra_info("socket").fileno()
            if fd >= 0:
                with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
                    sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(RuntimeError):  # the loop may be gone already
                self.writer.close()
        if self._conn is not None:
            self._conn.close()


class WorkerPool:
    """``await pool.call(request, timeout, context)`` -> the worker's
    ``handle(request, context)`` (see :func:`serve_requests`).

    ``target(conn, *args)`` is the worker's entry point (it builds its state, then calls
    :func:`serve_requests`); it runs in a ``spawn``-ed process (forking a process that already
    runs an event loop and threads is unsafe). The pool belongs to the event loop that first
    uses it."""

    def __init__(self, size: int, target: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.size = size
        self._target = target
        self._args = args
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: asyncio.Queue[_Worker] | None = None
        self._workers: set[_Worker] = set()
        self._running: set[asyncio.Task[bytes]] = set()
        self._closed = False

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=self._target, args=(child, *self._args),
                                    name="mailsift-scan", daemon=True)
        process.start()
        child.close()
        worker = _Worker(process, parent)
        self._workers.add(worker)
        return worker

    def _queue(self) -> asyncio.Queue[_Worker]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self.size):
                self._idle.put_nowait(self._spawn())
        return self._idle

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def _retire(self, worker: _Worker, why: str) -> None:
        """Kill ``worker`` and put a new one in its place."""
        log.error("scan worker %s %s; starting a new one", worker.process.pid, why)
        worker.kill()
        with contextlib.suppress(RuntimeError):  # reap it without blocking the loop
            asyncio.get_running_loop().run_in_executor(None, worker.process.join, 5)
        self._workers.discard(worker)
        if not self._closed:
            self._queue().put_nowait(self._spawn())

    def _finished(self, worker: _Worker, task: asyncio.Task[bytes]) -> None:
        """A call ended (even one whose caller gave up): the worker goes back or is retired."""
        self._running.discard(task)
        if task.cancelled():  # only a timeout (or close) cancels a call
            self._retire(worker, "did not answer within the scan timeout")
        elif task.exception() is not None:
            self._retire(worker, f"failed ({task.exception()!r})")
        elif self._closed or worker not in self._workers:
            worker.close()
        else:
            self._queue().put_nowait(worker)

    async def call(self, request: Any, timeout: float,
                   context: tuple[str, Any] | None = None, *,
                   queue_timeout: float | None = None) -> Any:
        """``handle(request, context)`` in a worker. ``context`` is ``(key, value)`` where the
        key names the value's content: a worker is sent the value only when it holds another
        key. (The lists were pickled with every message before: 1,000 entries cost ~6 ms a
        message, more than the scan.)

        ``timeout`` is the scan's own: it starts when a worker has the request. The wait for a
        free worker is not part of it (a worker that took a queued message late under a burst
        had been killed as "stuck"); it has its own limit, ``queue_timeout`` (default: ten
        times ``timeout``), past which the message is deferred and no worker is touched."""
        loop = asyncio.get_running_loop()
        waited = timeout * 10 if queue_timeout is None else queue_timeout
        try:
            worker = await asyncio.wait_for(self._queue().get(), waited)
        except TimeoutError as exc:
            raise DetectorTimeout("scan", f"no scan worker free within {waited:g} s") from exc
        deadline = loop.time() + timeout
        key, value = context if context is not None else (None, None)
        carried = key != worker.context_key
        try:
            payload = pickle.dumps((carried, value if carried else None, request),
                                   protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:
            self._queue().put_nowait(worker)
            raise
        worker.context_key = key
        task = loop.create_task(worker.call(payload))
        self._running.add(task)
        task.add_done_callback(lambda t: self._finished(worker, t))
        try:
            # shielded: a caller that goes away (client disconnected) leaves the scan to end on
            # its own, and the worker returns to the pool then
            data = await asyncio.wait_for(asyncio.shield(task), max(0.0, deadline - loop.time()))
        except TimeoutError as exc:
            task.cancel()  # the worker is stuck or far too slow: _finished replaces it
            raise DetectorTimeout("scan", f"no result within {timeout:.0f} s") from exc
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            code = worker.process.exitcode
            raise ScanWorkerError(f"scan worker died (exit code {code})") from exc
        ok, value = pickle.loads(data)
        if not ok:
            raise ScanWorkerError(str(value))
        return value

    def retire_all(self, args: tuple[Any, ...] | None = None) -> None:
        """New workers (started with ``args`` if given) for new calls; running calls finish on
        the old ones, which are closed then (see :meth:`_finished`)."""
        if args is not None:
            self._args = args
        self._workers = set()
        if self._idle is None:
            return  # not started yet: the first call spawns new ones
        while not self._idle.empty():
            self._idle.get_nowait().close()
        for _ in range(self.size):
            self._idle.put_nowait(self._spawn())

    async def aclose(self) -> None:
        """:meth:`close`, then wait until the loop has let go of every socket."""
        writers = [w.writer for w in self._workers if w.writer is not None]
        self.close()
        for writer in writers:
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(RuntimeError):  # the loop may be gone already
            for task in list(self._running):
                task.cancel()
        workers = list(self._workers)
        for worker in workers:
            worker.close()
        for worker in workers:
            worker.process.join(5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
        self._workers.clear()
