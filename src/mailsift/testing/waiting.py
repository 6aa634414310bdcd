"""Polling helpers for tests that wait for something to happen.

A fixed ``sleep`` before an assertion is either too long (the suite crawls) or too short on a
busy machine (the test flakes). These helpers poll a condition until it holds and fail with a
message that says what was awaited, for how long, and what was seen last.

``wait_until`` is for threads and plain code, ``await_until`` for coroutines (it yields to the
event loop between polls, so the code being waited on can run).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["WaitTimeout", "await_until", "wait_until"]

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The awaited condition did not hold within the timeout (a test failure, not an error)."""


class _Polls:
    """The polls of one wait: what was seen last, and the deadline on ``clock``."""

    def __init__(self, what: str, timeout: float, clock: Callable[[], float]) -> None:
        self.what, self.timeout, self.clock = what, timeout, clock
        self.deadline = clock() + timeout
        self.last: object = None
        self.error: BaseException | None = None

    def done(self, value: object = None, error: BaseException | None = None) -> bool:
        """Record one poll (its value, or the ignored error it raised): True when the value is
        truthy; raises :class:`WaitTimeout` when it is not and the deadline has passed."""
        if error is None:
            self.last = value
        self.error = error
        if error is None and value:
            return True
        if self.clock() >= self.deadline:
            seen = (f"last error: {self.error!r}" if self.error is not None
                    else f"last value: {self.last!r}")
            raise WaitTimeout(f"timed out after {self.timeout:g} s waiting for {self.what} "
                              f"({seen})")
        return False


def wait_until(condition: Callable[[], T], *, what: str, timeout: float = 15.0,
               interval: float = 0.05, ignore: tuple[type[BaseException], ...] = ()) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy, and
    return that. Exceptions listed in ``ignore`` count as "not yet" (e.g. ``OSError`` while a
    server starts). Raises :class:`WaitTimeout` naming ``what`` after ``timeout`` seconds."""
    polls = _Polls(what, timeout, time.monotonic)
    while True:
        try:
            value = condition()
        except ignore as exc:
            polls.done(error=exc)
        else:
            if polls.done(value):
                return value
        time.sleep(interval)


async def await_until(condition: Callable[[], T | Awaitable[T]], *, what: str,
                      timeout: float = 15.0, interval: float = 0.02,
                      ignore: tuple[type[BaseException], ...] = ()) -> T:
    """:func:`wait_until` for coroutines: ``condition`` may be a plain or an async callable;
    the event loop runs between polls."""
    polls = _Polls(what, timeout, asyncio.get_running_loop().time)
    while True:
        try:
            value = condition()
            if isinstance(value, Awaitable):
                value = await value
        except ignore as exc:
            polls.done(error=exc)
        else:
            if polls.done(value):
                return value
        await asyncio.sleep(interval)
