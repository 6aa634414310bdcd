"""The sender-history protocol and its value types.

Keys are lower-cased: a sender is the From address, a domain its registrable domain, a recipient
an envelope (or To/Cc) address. ``learned`` is how many messages the history has seen, so readers
can stay quiet while it is still cold (everybody is "new" on day one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from mailsift.config.detectors import HistorySettings

__all__ = [
    "Contact",
    "SenderHistory",
    "SenderStats",
    "normalise_name",
    "open_history",
    "shared_history",
]


@dataclass(frozen=True, slots=True)
class Contact:
    """One sender (address or domain) -> recipient pair."""

    first_seen: float
    last_seen: float
    count: int


@dataclass(frozen=True, slots=True)
class SenderStats:
    """A sender address or domain over all recipients (its local reputation)."""

    first_seen: float
    last_seen: float
    count: int
    recipients: int


@runtime_checkable
class SenderHistory(Protocol):
    """Read and record who writes to whom. Implementations bound their size."""

    def pair(self, sender: str, recipient: str) -> Contact | None: ...

    def domain_pair(self, domain: str, recipient: str) -> Contact | None: ...

    def sender(self, sender: str) -> SenderStats | None: ...

    def domain(self, domain: str) -> SenderStats | None: ...

    def addresses_for_name(self, display_name: str) -> tuple[str, ...]:
        """Addresses that delivered mail under this (normalised) display name."""
        ...

    def domain_first_seen(self, domain: str) -> float | None:
        """When a domain was first seen in delivered mail (as sender or link), or ``None``."""
        ...

    def learned(self) -> int: ...

    def record(self, sender: str, domain: str, recipients: Sequence[str], when: float,
               display_name: str = "", link_domains: Sequence[str] = ()) -> None: ...


def normalise_name(name: str) -> str:
    """``"Doe, Jane"`` and ``"jane  doe"`` compare equal."""
    name = name.strip().strip("\"'").lower()
    if "," in name:
        last, _, first = name.partition(",")
        name = f"{first} {last}"
    return " ".join(name.split())


def open_history(settings: HistorySettings) -> SenderHistory:
    """The configured implementation (the composition root calls this once)."""
    if settings.backend == "sqlite":
        from mailsift.core.errors import ConfigError
        from mailsift.history.sqlite import SqliteHistory

        if not settings.path:
            raise ConfigError("[history] backend = 'sqlite' needs a path", source="history")
        return SqliteHistory(settings.path, max_entries=settings.max_entries)
    from mailsift.history.memory import MemoryHistory

    return MemoryHistory(max_entries=settings.max_entries)


_OPENED: dict[object, SenderHistory] = {}


def shared_history(settings: HistorySettings) -> SenderHistory:
    """One history per process and configuration, opened on first use. The composition root
    hands it to every detector that reads it (links, impersonation, bulk, history) as
    ``Services.history``, so they share one instance across pipeline rebuilds."""
    key = (settings.backend, settings.path, settings.max_entries)
    if key not in _OPENED:
        _OPENED[key] = open_history(settings)
    return _OPENED[key]
