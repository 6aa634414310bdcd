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


def _failure(what: str, timeout: float, last: object, error: BaseException | None
             ) -> WaitTimeout:
    seen = f"last error: {error!r}" if error is not None else f"last value: {last!r}"
    return WaitTimeout(f"timed out after {timeout:g} s waiting for {what} ({seen})")


def wait_until(condition: Callable[[], T], *, what: str, timeout: float = 15.0,
               interval: float = 0.05, ignore: tuple[type[BaseException], ...] = ()) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy, and
    return that. Exceptions listed in ``ignore`` count as "not yet" (e.g. ``OSError`` while a
    server starts). Raises :class:`WaitTimeout` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            last, error = condition(), None
        except ignore as exc:
            error = exc
        if error is None and last:
            return last  # type: ignore[return-value]  # truthy T
        if time.monotonic() >= deadline:
            raise _failure(what, timeout, last, error)
        time.sleep(interval)


async def await_until(condition: Callable[[], T | Awaitable[T]], *, what: str,
                      timeout: float = 15.0, interval: float = 0.02,
                      ignore: tuple[type[BaseException], ...] = ()) -> T:
    """:func:`wait_until` for coroutines: ``condition`` may be a plain or an async callable;
    the event loop runs between polls."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            value = condition()
            if isinstance(value, Awaitable):
                value = await value
            last, error = value, None
        except ignore as exc:
            error = exc
        if error is None and last:
            return last  # type: ignore[return-value]  # truthy T
        if loop.time() >= deadline:
            raise _failure(what, timeout, last, error)
        await asyncio.sleep(interval)
