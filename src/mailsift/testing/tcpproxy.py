"""A TCP proxy that a test can cut and restore: how a test takes PostgreSQL or Redis "down" for
one gateway without stopping the server other tests (and other agents) share.

    with TcpProxy("127.0.0.1", 5432) as pg:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/test"
        pg.cut()       # refuse new connections and drop the open ones
        pg.restore()   # accept again
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from mailsift.testing.service import Service
from mailsift.testing.sink import free_port

__all__ = ["TcpProxy"]


class TcpProxy(Service):
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="tcpproxy")

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    def _run(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)  # type: ignore[arg-type]

    def start(self) -> TcpProxy:
        self._thread.start()
        self._run(self._listen())
        return self

    def cut(self) -> None:
        """Refuse new connections and drop every open one (the service is "down")."""
        self._run(self._cut())

    def restore(self) -> None:
        self._run(self._listen())

    def stop(self) -> None:
        self._run(self._cut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

