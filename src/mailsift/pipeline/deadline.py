"""Per-detector time budgets.

Python cannot stop a function from outside, so the budget is enforced two ways: in the main
thread of a process (``mailsift scan`` workers, gateway scan workers) an interval timer raises
``DetectorTimeout`` inside the detector; elsewhere (threads) the overrun is detected when the
detector returns and its findings are replaced by a DETECTOR_TIMEOUT finding. Either way the
message is never treated as clean.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["DeadlineExceeded", "deadline"]


class DeadlineExceeded(BaseException):
    """Raised inside a detector by the interval timer. Like asyncio's CancelledError it is a
    BaseException on purpose: libraries that catch ``Exception`` broadly (DNS and SPF code do)
    must not swallow it and carry on with the next lookup."""

_CAN_SIGNAL = hasattr(signal, "setitimer")
_active: list[tuple[str, float]] = []  # the deadline being enforced (main thread only)
_previous: list[object] = []  # the SIGALRM handler that was there before ours


def _expired(signum: int, frame: FrameType | None) -> None:
    if _active:
        raise DeadlineExceeded(*_active[-1])
    previous = _previous[-1] if _previous else None
    if callable(previous):  # not ours: whoever set the alarm before us gets it
        previous(signum, frame)


@contextmanager
def deadline(name: str, seconds: float) -> Iterator[None]:
    """Raise :class:`DeadlineExceeded` in the block after ``seconds`` (main thread only).

    The SIGALRM handler is installed once and then stays (installing it costs more than a
    fast detector takes); with no deadline running it hands the signal to the handler that was
    there before. Deadlines do not nest: a block inside another replaces the outer timer."""
    use_timer = _CAN_SIGNAL and threading.current_thread() is threading.main_thread()
    if not use_timer:
        yield
        return
    if signal.getsignal(signal.SIGALRM) is not _expired:
        _previous[:] = [signal.signal(signal.SIGALRM, _expired)]
    _active.append((name, seconds))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _active.pop()
