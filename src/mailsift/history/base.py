"""The sender-history protocol and its value types (the implementations import this module;
choosing one is ``history/backends.py``).

Keys are lower-cased: a sender is the From address, a domain its registrable domain, a recipient
an envelope (or To/Cc) address. ``learned`` is how many messages the history has seen, so readers
can stay quiet while it is still cold (everybody is "new" on day one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = [
    "Contact",
    "Learned",
    "SenderHistory",
    "SenderStats",
    "normalise_name",
    "record_each",
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

    def record_many(self, entries: Sequence[Learned]) -> None:
        """``record`` for each entry, in order (one transaction where the backend has them)."""
        ...


class Learned(NamedTuple):
    """The arguments of one ``SenderHistory.record``."""

    sender: str
    domain: str
    recipients: Sequence[str]
    when: float
    display_name: str = ""
    link_domains: Sequence[str] = ()


def record_each(history: SenderHistory, entries: Sequence[Learned]) -> None:
    """``record_many`` for a backend without transactions worth sharing: one ``record`` each."""
    for entry in entries:
        history.record(*entry)


def normalise_name(name: str) -> str:
    """``"Doe, Jane"`` and ``"jane  doe"`` compare equal."""
    name = name.strip().strip("\"'").lower()
    if "," in name:
        last, _, first = name.partition(",")
        name = f"{first} {last}"
    return " ".join(name.split())
