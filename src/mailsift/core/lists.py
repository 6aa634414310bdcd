"""Allow/block list entries as policy sees them: an immutable snapshot taken from the store.

Kinds: ``sender`` (address), ``domain`` (From domain and its subdomains), ``ip`` (address or
network in CIDR), ``url`` (prefix of a URL or a host), ``hash`` (sha256 of an attachment),
``spoof_pair`` (``claimed-domain|sending-infrastructure`` where the infrastructure is an IP/CIDR,
a PTR/HELO domain or an envelope domain). ``scope`` is ``admin``, ``incident`` (time-boxed
allows that beat even high-confidence verdicts) or ``user:<address>`` (a recipient's own
safe/blocked senders).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LIST_KINDS", "ListEntry", "ListSnapshot"]

LIST_KINDS = ("sender", "domain", "ip", "url", "hash", "spoof_pair")


@dataclass(frozen=True, slots=True)
class ListEntry:
    kind: str
    value: str
    action: str  # "allow" | "block"
    scope: str = "admin"
    entry_id: str = ""
    expires_at: float | None = None
    note: str = ""
    author: str = ""

    def active(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now

    @property
    def user(self) -> str | None:
        return self.scope[5:].lower() if self.scope.startswith("user:") else None


@dataclass(frozen=True, slots=True)
class ListSnapshot:
    """All list entries at one moment, with a content version for the verdict record."""

    entries: tuple[ListEntry, ...] = ()
    version: str = "empty"
    taken_at: float = 0.0

    def of_scope(self, scope: str) -> tuple[ListEntry, ...]:
        return tuple(e for e in self.entries if e.scope == scope)
