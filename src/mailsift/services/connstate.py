"""Shared connection state for rate limits and greylisting: counters and expiring keys.

Two implementations of one small async interface: :class:`RedisConnState` (every gateway node
sees the same counts and greylist entries: ``[ratelimit] redis_url``) and
:class:`MemoryConnState` (one process; the default). Keys expire on their own; nothing needs
cleaning up by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

__all__ = ["ConnState", "MemoryConnState", "RedisConnState", "make_conn_state"]


@runtime_checkable
class ConnState(Protocol):
    async def incr(self, key: str, ttl: int) -> int:
        """Add one to ``key`` (created with ``ttl`` seconds to live) and return the count."""
        ...

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl: int, *, only_new: bool = False) -> bool:
        """Set ``key``; with ``only_new`` only if absent. True when it was written."""
        ...

    async def aclose(self) -> None: ...


class MemoryConnState:
    """Process-local state with expiry (a dict; expired keys are dropped when met or swept)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 500_000
                 ) -> None:
        self._clock = clock
        self._data: dict[str, tuple[float, str]] = {}
        self._max = max_keys
        # No lock: every method runs on the gateway's event loop and never awaits between
        # reading and writing, so each one is atomic.

    def _live(self, key: str, now: float) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= now:
            del self._data[key]
            return None
        return item[1]

    def _sweep(self, now: float) -> None:
        if len(self._data) < self._max:
            return
        for key in [k for k, (exp, _v) in self._data.items() if exp <= now]:
            del self._data[key]
        while len(self._data) >= self._max:  # still full: drop the oldest written
            del self._data[next(iter(self._data))]

    async def incr(self, key: str, ttl: int) -> int:
        now = self._clock()
        current = self._live(key, now)
        if current is None:
            self._sweep(now)
            self._data[key] = (now + ttl, "1")
            return 1
        expires, _ = self._data[key]
        count = int(current) + 1
        self._data[key] = (expires, str(count))
        return count

    async def get(self, key: str) -> str | None:
        return self._live(key, self._clock())

    async def set(self, key: str, value: str, ttl: int, *, only_new: bool = False) -> bool:
        now = self._clock()
        if only_new and self._live(key, now) is not None:
            return False
        self._sweep(now)
        self._data[key] = (now + ttl, value)
        return True

    async def aclose(self) -> None:
        return None


class RedisConnState:
    """The same on Redis: INCR + EXPIRE (pipelined, expiry only set on a new key), GET, SET EX
    [NX]. One connection pool per gateway process."""

    def __init__(self, url: str) -> None:
        import redis.asyncio

        self.client: Any = redis.asyncio.Redis.from_url(url)

    async def incr(self, key: str, ttl: int) -> int:
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, ttl, nx=True)
        count, _ = await pipe.execute()
        return int(count)

    async def get(self, key: str) -> str | None:
        value = await self.client.get(key)
        return None if value is None else value.decode("utf-8", "replace")

    async def set(self, key: str, value: str, ttl: int, *, only_new: bool = False) -> bool:
        return bool(await self.client.set(key, value, ex=ttl, nx=only_new))

    async def aclose(self) -> None:
        await self.client.aclose()


def make_conn_state(redis_url: str) -> ConnState:
    """Redis when a URL is configured (shared by every node), else this process's memory."""
    return RedisConnState(redis_url) if redis_url else MemoryConnState()
