"""In-memory sender history, bounded: each table keeps at most ``max_entries`` keys and forgets
the least recently seen first (an ``OrderedDict`` used as an LRU). Thread-safe; lost on restart.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TypeVar

from mailsift.history.base import Contact, Learned, SenderStats, normalise_name, record_each

__all__ = ["MemoryHistory"]

K = TypeVar("K")
V = TypeVar("V")


class _Lru(OrderedDict[K, V]):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: K, value: V) -> bool:
        """Store and mark recent; ``True`` when the key is new."""
        new = key not in self
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)
        return new


def _bump(old: Contact | None, when: float) -> Contact:
    if old is None:
        return Contact(when, when, 1)
    return Contact(min(old.first_seen, when), max(old.last_seen, when), old.count + 1)


def _stats(old: SenderStats | None, when: float, new_recipients: int) -> SenderStats:
    if old is None:
        return SenderStats(when, when, 1, new_recipients)
    return SenderStats(min(old.first_seen, when), max(old.last_seen, when), old.count + 1,
                       old.recipients + new_recipients)


class MemoryHistory:
    """``SenderHistory`` kept in process memory."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._pairs: _Lru[tuple[str, str], Contact] = _Lru(max_entries)
        self._dpairs: _Lru[tuple[str, str], Contact] = _Lru(max_entries)
        self._senders: _Lru[str, SenderStats] = _Lru(max_entries)
        self._domains: _Lru[str, SenderStats] = _Lru(max_entries)
        self._names: _Lru[str, tuple[str, ...]] = _Lru(max_entries)
        self._seen: _Lru[str, float] = _Lru(max_entries)
        self._learned = 0
        self._lock = threading.Lock()

    def pair(self, sender: str, recipient: str) -> Contact | None:
        return self._pairs.get((sender.lower(), recipient.lower()))

    def domain_pair(self, domain: str, recipient: str) -> Contact | None:
        return self._dpairs.get((domain.lower(), recipient.lower()))

    def sender(self, sender: str) -> SenderStats | None:
        return self._senders.get(sender.lower())

    def domain(self, domain: str) -> SenderStats | None:
        return self._domains.get(domain.lower())

    def addresses_for_name(self, display_name: str) -> tuple[str, ...]:
        return self._names.get(normalise_name(display_name), ())

    def domain_first_seen(self, domain: str) -> float | None:
        return self._seen.get(domain.lower())

    def learned(self) -> int:
        return self._learned

    def __len__(self) -> int:
        return len(self._pairs)

    def record_many(self, entries: Sequence[Learned]) -> None:
        record_each(self, entries)

    def record(self, sender: str, domain: str, recipients: Sequence[str], when: float,
               display_name: str = "", link_domains: Sequence[str] = ()) -> None:
        sender, domain = sender.lower(), domain.lower()
        with self._lock:
            self._learned += 1
            for seen in dict.fromkeys(d.lower() for d in (domain, *link_domains) if d):
                self._seen.put(seen, min(self._seen.get(seen, when), when))
            new_s = new_d = 0
            for rcpt in dict.fromkeys(r.lower() for r in recipients):
                key = (sender, rcpt)
                new_s += self._pairs.put(key, _bump(self._pairs.get(key), when))
                dkey = (domain, rcpt)
                new_d += self._dpairs.put(dkey, _bump(self._dpairs.get(dkey), when))
            self._senders.put(sender, _stats(self._senders.get(sender), when, new_s))
            if domain:
                self._domains.put(domain, _stats(self._domains.get(domain), when, new_d))
            name = normalise_name(display_name)
            if name:
                known = self._names.get(name, ())
                if sender not in known:
                    known = (*known[-7:], sender)  # a name has few real addresses; keep 8
                self._names.put(name, known)
