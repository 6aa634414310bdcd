"""What the test servers share: ``with`` starts and stops them, and a child process is asked to
stop before it is killed."""

from __future__ import annotations

import signal
import subprocess
from types import TracebackType
from typing import Self

__all__ = ["Service", "stop_process"]


class Service:
    """A server a test starts and stops: ``with Server(...) as s:`` is ``s.start()`` and, on
    the way out (also after a failure), ``s.stop()``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def stop_process(proc: subprocess.Popen[bytes] | None, grace: float = 30.0,
                 sig: int = signal.SIGTERM) -> None:
    """Ask ``proc`` to stop (``sig``), wait ``grace`` seconds, then kill it; nothing when it
    has already ended."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
