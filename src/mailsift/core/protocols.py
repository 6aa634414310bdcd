"""Protocols for the I/O that is injected into the scan path (DNS, time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "DnsAnswer", "Resolver", "SystemClock"]


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """The answer to one DNS question.

    ``rcode`` is ``NOERROR`` or ``NXDOMAIN``; ``records`` holds the RDATA as text (TXT strings
    joined, MX as ``"pref host"``, A/AAAA as addresses, PTR/CNAME as names without trailing dot).
    An empty NOERROR answer is NODATA. Timeouts and SERVFAIL are not answers: the resolver raises
    ``DnsTempError`` for them.
    """

    name: str
    rdtype: str
    rcode: str
    records: tuple[str, ...] = ()
    ttl: int = 0

    @property
    def nxdomain(self) -> bool:
        return self.rcode == "NXDOMAIN"


@runtime_checkable
class Resolver(Protocol):
    """Answers DNS questions; raises ``DnsTempError`` on timeout or SERVFAIL."""

    def query(self, name: str, rdtype: str) -> DnsAnswer: ...


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        import time

        return time.time()

    def monotonic(self) -> float:
        import time

        return time.monotonic()
