"""A scan-worker stand-in for testing :class:`mailsift.services.scan_workers.WorkerPool`:
requests are ``(what, arg)`` and do what they say, so a test can make a worker answer, fail,
hang or die on demand. It lives in the package because spawned workers import it by name."""

from __future__ import annotations

import os
import time
from multiprocessing.connection import Connection
from typing import Any

from mailsift.services.scan_workers import serve_requests

__all__ = ["scripted_worker"]


def _handle(request: tuple[str, Any], context: Any) -> Any:
    what, arg = request
    if what == "context":
        return (os.getpid(), context)
    if what == "echo":
        return (os.getpid(), arg)
    if what == "sleep":
        time.sleep(arg)
        return (os.getpid(), "slept")
    if what == "raise":
        raise ValueError(arg)
    if what == "exit":
        os._exit(arg)
    raise ValueError(f"unknown request {what!r}")


def _refuse_to_start() -> None:
    raise ValueError("rule pack default.toml: line 3: bad pattern")


def scripted_worker(conn: Connection, start_fails: bool = False) -> None:
    serve_requests(conn, _handle, started=_refuse_to_start if start_fails else lambda: None)
