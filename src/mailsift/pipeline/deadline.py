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
from collections.abc import Callable
from types import FrameType

__all__ = ["DeadlineExceeded", "deadline"]


class DeadlineExceeded(BaseException):
    """Raised inside a detector by the interval timer. Like asyncio's CancelledError it is a
    BaseException on purpose: libraries that catch ``Exception`` broadly (DNS and SPF code do)
    must not swallow it and carry on with the next lookup."""

_CAN_SIGNAL = hasattr(signal, "setitimer")
_active: list[tuple[str, float]] = []  # the deadline being enforced (main thread only)
_previous: list[object] = []  # the SIGALRM handler that was there before ours
_MAIN = threading.main_thread()
#: ``signal.getsignal`` without its conversion to ``Handlers``, which for a function handler
#: is a failed enum look-up (an exception) on every call: 2 us per detector per message. Only
#: compared by identity with our handler, for which the conversion changes nothing.
_getsignal: Callable[[int], object] = getattr(signal, "_signal", signal).getsignal


def _expired(signum: int, frame: FrameType | None) -> None:
    if _active:
        raise DeadlineExceeded(*_active[-1])
    previous = _previous[-1] if _previous else None
    if callable(previous):  # not ours: whoever set the alarm before us gets it
        previous(signum, frame)


class deadline:  # lower case: used like the function it replaced, ``with deadline(...)``
    """Raise :class:`DeadlineExceeded` in the block after ``seconds`` (main thread only).

    The SIGALRM handler is installed once and then stays (installing it costs more than a
    fast detector takes); with no deadline running it hands the signal to the handler that was
    there before. Deadlines do not nest: a block inside another replaces the outer timer.
    A class rather than a generator context manager: it runs twice per detector per message."""

    __slots__ = ("name", "seconds", "timed")

    def __init__(self, name: str, seconds: float) -> None:
        self.name = name
        self.seconds = seconds
        self.timed = _CAN_SIGNAL and threading.current_thread() is _MAIN

    def __enter__(self) -> None:
        if not self.timed:
            return
        if _getsignal(signal.SIGALRM) is not _expired:
            _previous[:] = [signal.signal(signal.SIGALRM, _expired)]
        _active.append((self.name, self.seconds))
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        if self.timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            _active.pop()
