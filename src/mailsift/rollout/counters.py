"""Rate counters shared by every gateway node: per subject, per minute bucket.

A subject is what the breaker watches: ``all`` (every scanned message), ``artifact:<name>``,
``rule:<id>`` or ``category:<name>``; two counts per subject and bucket: ``seen`` (messages the
subject had a say in, or all messages for ``all``) and ``hits`` (messages it helped quarantine or
reject). Redis (INCRBY with expiry, pipelined) shares them between nodes; the in-memory backend
serves a single node and the tests.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Protocol

__all__ = ["BUCKET_SECONDS", "Counters", "MemoryCounters", "RedisCounters", "bucket_of"]

BUCKET_SECONDS = 60


def bucket_of(ts: float) -> int:
    return int(ts // BUCKET_SECONDS)


class Counters(Protocol):
    def add(self, bucket: int, counts: Mapping[tuple[str, str], int]) -> None:
        """Add ``{(subject, "seen"|"hits"): n}`` to ``bucket``."""
        ...

    def sums(self, subjects: Iterable[str], first: int, last: int) -> dict[tuple[str, str], int]:
        """Totals over buckets ``first..last`` inclusive."""
        ...

    def subjects(self, first: int, last: int) -> set[str]: ...


class MemoryCounters:
    def __init__(self) -> None:
        self._data: dict[int, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
        self._lock = threading.Lock()

    def add(self, bucket: int, counts: Mapping[tuple[str, str], int]) -> None:
        with self._lock:
            slot = self._data[bucket]
            for key, n in counts.items():
                slot[key] += n

    def sums(self, subjects: Iterable[str], first: int, last: int) -> dict[tuple[str, str], int]:
        wanted = set(subjects)
        out: dict[tuple[str, str], int] = defaultdict(int)
        with self._lock:
            for bucket in range(first, last + 1):
                for (subject, kind), n in self._data.get(bucket, {}).items():
                    if subject in wanted:
                        out[(subject, kind)] += n
        return dict(out)

    def subjects(self, first: int, last: int) -> set[str]:
        with self._lock:
            return {s for b in range(first, last + 1) for (s, _) in self._data.get(b, {})}


class RedisCounters:
    """``{prefix}:{bucket}`` is a hash of ``subject|kind`` -> count, expiring after ``keep``."""

    def __init__(self, url: str, *, prefix: str = "mailsift:breaker",
                 keep_seconds: int = 8 * 86400) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.prefix = prefix
        self.keep = keep_seconds

    def _key(self, bucket: int) -> str:
        return f"{self.prefix}:{bucket}"

    def add(self, bucket: int, counts: Mapping[tuple[str, str], int]) -> None:
        pipe = self.client.pipeline(transaction=False)
        key = self._key(bucket)
        for (subject, kind), n in counts.items():
            pipe.hincrby(key, f"{subject}|{kind}", n)
        pipe.expire(key, self.keep)
        pipe.execute()

    def _buckets(self, first: int, last: int) -> list[dict[bytes, bytes]]:
        pipe = self.client.pipeline(transaction=False)
        for bucket in range(first, last + 1):
            pipe.hgetall(self._key(bucket))
        return list(pipe.execute())

    def sums(self, subjects: Iterable[str], first: int, last: int) -> dict[tuple[str, str], int]:
        wanted = set(subjects)
        out: dict[tuple[str, str], int] = defaultdict(int)
        for data in self._buckets(first, last):
            for field, value in data.items():
                subject, _, kind = field.decode().rpartition("|")
                if subject in wanted:
                    out[(subject, kind)] += int(value)
        return dict(out)

    def subjects(self, first: int, last: int) -> set[str]:
        return {f.decode().rpartition("|")[0] for d in self._buckets(first, last) for f in d}

    def clear(self) -> None:
        for key in self.client.scan_iter(f"{self.prefix}:*"):
            self.client.delete(key)
