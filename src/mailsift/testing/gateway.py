"""Running the whole gateway (``run_gateway``) in a background thread, for tests.

    with RunningGateway(settings) as gw:
        smtplib.SMTP("127.0.0.1", gw.ports["smtp"]) ...
        gw.call(coroutine_function)       # run something on the gateway's event loop
"""

from __future__ import annotations

import asyncio
import smtplib
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from mailsift.config.schema import Settings
from mailsift.testing.service import Service

__all__ = ["RunningGateway", "send_smtp", "smtp_only_config"]

T = TypeVar("T")


class RunningGateway(Service):
    def __init__(self, settings: Settings, *, start_timeout: float = 60.0) -> None:
        self.settings = settings
        self.start_timeout = start_timeout
        self.loop = asyncio.new_event_loop()
        self.ports: dict[str, int] = {}
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> RunningGateway:
        from mailsift.interfaces.cli.serve import run_gateway

        ready = threading.Event()

        async def main() -> None:
            self._stop = asyncio.Event()
            fut: asyncio.Future[dict[str, int]] = self.loop.create_future()
            task = asyncio.create_task(run_gateway(self.settings, self._stop, fut))
            pending: list[asyncio.Future[object]] = [fut, task]  # type: ignore[list-item]
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if fut.done():
                self.ports = fut.result()
            ready.set()
            await task

        def target() -> None:
            try:
                self.loop.run_until_complete(main())
            except BaseException as exc:  # surfaced by start()/stop()
                self._error = exc
                ready.set()

        self._thread = threading.Thread(target=target, name="mailsift-gateway", daemon=True)
        self._thread.start()
        if not ready.wait(self.start_timeout):
            raise RuntimeError("the gateway did not start in time")
        if self._error is not None:
            raise RuntimeError(f"the gateway failed to start: {self._error}") from self._error
        return self

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float = 120.0) -> T:
        """Run a coroutine function on the gateway's loop and wait for its result."""
        async def wrapped() -> T:
            return await fn()

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout)

    def stop(self) -> None:
        if self._stop is not None and self._thread is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(60)
        if not self.loop.is_closed():
            self.loop.close()



def send_smtp(port: int, raw: bytes, rcpts: list[str], mail_from: str = "alice@example.org",
              *, xforward: str | None = None, timeout: float = 60.0) -> tuple[int, str]:
    """Send one message; returns the reply to DATA (or to the refused RCPT) as (code, text)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as client:
        client.ehlo("client.example")
        if xforward:
            code, reply = client.docmd("XFORWARD", xforward)
            if code != 250:
                return code, reply.decode() if isinstance(reply, bytes) else str(reply)
        try:
            client.sendmail(mail_from, rcpts, raw)
        except smtplib.SMTPDataError as exc:
            err = exc.smtp_error
            return exc.smtp_code, err.decode() if isinstance(err, bytes) else str(err)
        except smtplib.SMTPRecipientsRefused as exc:
            code, msg = next(iter(exc.recipients.values()))
            return code, msg.decode()
        return 250, "ok"


def smtp_only_config(data_dir: Path | str, next_hop_port: int, smtp_port: int, *,
                     workers: int = 0, store: str = "", gateway: str = "",
                     extra: str = "") -> str:
    """The TOML of a ``mailsift serve`` with only its SMTP listener (no HTTP, no milter) and
    offline checks, relaying to 127.0.0.1:``next_hop_port``. ``store`` and ``gateway`` are
    more lines of those sections; ``extra`` more sections."""
    return f"""
[store]
data_dir = "{data_dir}"
{store}
[gateway]
next_hop_port = {next_hop_port}
workers = {workers}
{gateway}
[smtp]
port = {smtp_port}
[http]
enabled = false
[milter]
enabled = false
[scan]
offline = true
{extra}
"""
