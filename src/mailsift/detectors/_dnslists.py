"""Asking DNS lists (DNSBL, URIBL/DBL/SURBL) and reading their answers, without guessing.

A list answers an A query for ``<reversed ip>.<zone>`` or ``<domain>.<zone>``: NXDOMAIN (or an
empty answer) means "not listed", an address in 127.0.0.0/8 means "listed with this code". Every
other outcome is *not* a listing:

* ``127.255.255.x`` is the operators' "query refused / rate limited / error" answer (Spamhaus
  returns it to queries through public resolvers), as is any answer named in the list's
  ``error_codes`` (URIBL's 127.0.0.1, DBL's 127.0.1.255): an operational alert, weight 0.
* an address outside 127.0.0.0/8 is a resolver that rewrites NXDOMAIN (ISP "search" pages) or a
  list that was shut down with a wildcard: an operational alert, weight 0.
* a timeout, SERVFAIL or REFUSED (``DnsTempError``), or no answer within the message's budget:
  an operational finding, weight 0.

Queries of one message run concurrently: written to one socket at once by the list resolver
(``mailsift.auth.batch``, what the composition root hands over), or, for any other injected
``Resolver``, on a small thread pool. Both cache positive and negative answers for their TTL.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from enum import StrEnum

from mailsift.config.reputation import DnsListSettings, ListCode
from mailsift.core.errors import DnsTempError
from mailsift.core.protocols import DnsAnswer, Resolver

__all__ = [
    "Outcome",
    "Query",
    "Verdict",
    "collect",
    "interpret",
    "ip_query_name",
    "is_public_ip",
    "outcome_of",
    "run_lookups",
    "start_lookups",
]

_LOCAL_NETS = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/3", "::/127", "fc00::/7", "fe80::/10",
    "ff00::/8",
))


def is_public_ip(text: str) -> bool:
    """An address a DNSBL can know: not loopback, RFC 1918, link-local, CGNAT or ULA.
    Documentation ranges count as public (tests and examples use them)."""
    try:
        addr = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not any(addr.version == net.version and addr in net for net in _LOCAL_NETS)


def ip_query_name(ip: str, zone: str) -> str:
    """``192.0.2.1`` -> ``1.2.0.192.<zone>``; IPv6 as 32 reversed nibbles (RFC 5782 2.4)."""
    addr = ipaddress.ip_address(ip.strip("[]"))
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if isinstance(addr, ipaddress.IPv4Address):
        return ".".join(reversed(str(addr).split("."))) + "." + zone
    return ".".join(reversed(addr.exploded.replace(":", ""))) + "." + zone


class Verdict(StrEnum):
    LISTED = "listed"
    NOT_LISTED = "not_listed"
    REFUSED = "refused"  # 127.255.255.x: the list refused us
    BOGUS = "bogus"  # an answer outside 127.0.0.0/8
    ERROR = "error"  # timeout, SERVFAIL, REFUSED rcode
    UNASKED = "unasked"  # the message's budget ran out first


@dataclass(frozen=True, slots=True)
class Query:
    """One question: ``subject`` (the IP or domain) on ``dnslist``, and why it was asked."""

    dnslist: DnsListSettings
    subject: str
    role: str  # client, received, url, from, reply-to, sender
    name: str  # the DNS name asked
    kind: str = "domain"  # ip | domain


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the list said: the verdict, the answers (A records) and the codes they mean."""

    query: Query
    verdict: Verdict
    answers: tuple[str, ...] = ()
    codes: tuple[ListCode, ...] = ()
    detail: str = ""



def interpret(query: Query, answer: DnsAnswer) -> Outcome:
    """One DNS answer -> an outcome; only 127.0.0.0/8 answers that are not error codes list."""
    records = tuple(r for r in answer.records if r)
    if answer.nxdomain or not records:
        return Outcome(query, Verdict.NOT_LISTED)
    refused = [r for r in records if query.dnslist.is_error(r)]
    if refused:
        return Outcome(query, Verdict.REFUSED, records,
                       detail=f"the list answered {', '.join(refused)} (query refused or rate "
                       "limited: use a resolver the list operator allows)")
    bogus = [r for r in records if not _loopback(r)]
    if bogus:
        return Outcome(query, Verdict.BOGUS, records,
                       detail=f"answer {', '.join(bogus)} is outside 127.0.0.0/8 (a resolver "
                       "rewriting NXDOMAIN, or a list shut down with a wildcard)")
    return Outcome(query, Verdict.LISTED, records,
                   tuple(query.dnslist.code(r) for r in records))


def _loopback(text: str) -> bool:
    try:
        return ipaddress.IPv4Address(text).is_loopback
    except ValueError:
        return False


def outcome_of(query: Query, result: DnsAnswer | DnsTempError | None) -> Outcome:
    """An answer, a temporary error or nothing (never asked in time) -> an outcome."""
    if isinstance(result, DnsAnswer):
        return interpret(query, result)
    if isinstance(result, DnsTempError):
        return Outcome(query, Verdict.ERROR, detail=str(result))
    return Outcome(query, Verdict.UNASKED, detail="no answer within the message's list budget")


def _ask(resolver: Resolver, query: Query, lifetime: float) -> Outcome:
    try:
        ask: Callable[..., DnsAnswer] = resolver.query
        if hasattr(resolver, "lifetime"):  # DnsResolver: never wait past the message's budget
            answer = ask(query.name, "A", lifetime=lifetime)
        else:
            answer = ask(query.name, "A")
    except DnsTempError as exc:
        return Outcome(query, Verdict.ERROR, detail=str(exc))
    return interpret(query, answer)


def start_lookups(pool: ThreadPoolExecutor, resolver: Resolver, queries: Iterable[Query],
                  budget: float) -> list[tuple[Query, Future[Outcome]]]:
    """Send every query now; collect with :func:`collect`."""
    return [(q, pool.submit(_ask, resolver, q, budget)) for q in queries]


def collect(pending: Sequence[tuple[Query, Future[Outcome]]], deadline: float,
            clock: Callable[[], float] = time.monotonic) -> list[Outcome]:
    """The outcomes by ``deadline`` (monotonic seconds); unanswered ones are ``UNASKED``."""
    wait_futures([f for _q, f in pending], timeout=max(0.0, deadline - clock()))
    out = []
    for query, future in pending:
        if future.done() and not future.cancelled() and future.exception() is None:
            out.append(future.result())
        else:
            future.cancel()
            exc = future.exception() if future.done() and not future.cancelled() else None
            detail = (f"{type(exc).__name__}: {exc}" if exc is not None
                      else "no answer within the message's list budget")
            out.append(Outcome(query, Verdict.ERROR if exc else Verdict.UNASKED, detail=detail))
    return out


def run_lookups(pool: ThreadPoolExecutor, resolver: Resolver, queries: Iterable[Query],
                budget: float) -> list[Outcome]:
    """Ask every query concurrently and wait at most ``budget`` seconds for all of them."""
    deadline = time.monotonic() + budget
    return collect(start_lookups(pool, resolver, queries, budget), deadline)
