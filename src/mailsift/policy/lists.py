"""Matching allow/block list entries against the facts of one message (pure, no I/O)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from mailsift.core.lists import ListEntry, ListSnapshot

__all__ = ["MessageFacts", "domain_match", "entry_matches", "ip_match", "match_entries"]


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What list entries are matched against. ``auth_aligned`` is DMARC pass or compauth pass:
    sender and domain allows only apply when it is true (a forged From must not ride an allow)."""

    from_addr: str = ""
    from_domain: str = ""
    mail_from: str = ""
    client_ip: str = ""
    helo: str = ""
    url_hosts: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    hashes: tuple[str, ...] = ()
    auth_aligned: bool = False


def domain_match(domain: str, entry: str) -> bool:
    domain, entry = domain.lower().rstrip("."), entry.lower().lstrip("*.").rstrip(".")
    return bool(domain) and (domain == entry or domain.endswith("." + entry))


def ip_match(ip: str, entry: str) -> bool:
    if not ip:
        return False
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False


def _url_match(facts: MessageFacts, entry: str) -> bool:
    value = entry.lower()
    if "/" not in value:
        return any(domain_match(h, value) for h in facts.url_hosts)
    bare = value.split("://", 1)[-1]
    return any(u.lower().split("://", 1)[-1].startswith(bare) for u in facts.urls)


def _spoof_pair_match(facts: MessageFacts, entry: str) -> bool:
    claimed, _, infra = entry.partition("|")
    if not domain_match(facts.from_domain, claimed) or not infra:
        return False
    if any(c.isdigit() for c in infra) and ("/" in infra or _is_ip(infra)):
        return ip_match(facts.client_ip, infra)
    mail_from_domain = facts.mail_from.rsplit("@", 1)[-1] if "@" in facts.mail_from else ""
    return domain_match(facts.helo, infra) or domain_match(mail_from_domain, infra)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def entry_matches(entry: ListEntry, facts: MessageFacts) -> bool:
    kind, value = entry.kind, entry.value
    if kind == "sender":
        return bool(facts.from_addr) and facts.from_addr.lower() == value.lower()
    if kind == "domain":
        return domain_match(facts.from_domain, value)
    if kind == "ip":
        return ip_match(facts.client_ip, value)
    if kind == "url":
        return _url_match(facts, value)
    if kind == "hash":
        return value.lower() in facts.hashes
    if kind == "spoof_pair":
        return _spoof_pair_match(facts, value)
    return False


def match_entries(snapshot: ListSnapshot | None, facts: MessageFacts, now: float,
                  scope: str) -> list[ListEntry]:
    """Active entries of ``scope`` that match the message."""
    if snapshot is None:
        return []
    return [e for e in snapshot.entries
            if e.scope == scope and e.active(now) and entry_matches(e, facts)]
