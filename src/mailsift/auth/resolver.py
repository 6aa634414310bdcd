"""The dnspython-backed ``Resolver`` every DNS-based check uses (never the process default).

Owns: building a resolver from ``DnsSettings`` (or a ``--dns HOST:PORT`` override), mapping
dnspython outcomes onto ``DnsAnswer`` (NXDOMAIN and NODATA are answers; SERVFAIL, REFUSED,
timeouts and network errors raise ``DnsTempError``), and a bounded TTL cache.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver

from mailsift.config.schema import DnsSettings
from mailsift.core.errors import ConfigError, DnsTempError
from mailsift.core.protocols import DnsAnswer, Resolver

__all__ = ["BudgetedResolver", "DnsResolver", "TtlCache", "make_resolver", "parse_server"]

# Negative answers carry no record TTL; RFC 2308 says use the SOA minimum, which dnspython does
# not hand us for NXDOMAIN raised as an exception, so cache them briefly.
_NEGATIVE_TTL = 60
_MAX_TTL = 3600


class TtlCache:
    """A bounded LRU cache whose entries expire after their DNS TTL."""

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._size = size
        self._clock = clock
        self._data: OrderedDict[tuple[str, str], tuple[float, DnsAnswer]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> DnsAnswer | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            expires, answer = item
            if expires <= self._clock():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return answer

    def put(self, key: tuple[str, str], answer: DnsAnswer) -> None:
        if self._size <= 0:
            return
        ttl = answer.ttl if answer.records else min(answer.ttl or _NEGATIVE_TTL, _NEGATIVE_TTL)
        ttl = min(ttl, _MAX_TTL)
        if ttl <= 0:
            return
        with self._lock:
            self._data[key] = (self._clock() + ttl, answer)
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


def _rdata_text(rdtype: str, rdata: object) -> str:
    if rdtype in ("TXT", "SPF"):
        strings: tuple[bytes, ...] = rdata.strings  # type: ignore[attr-defined]
        # RFC 7208 3.3 / RFC 6376 3.6.2.2: character-strings of one record are concatenated.
        return b"".join(strings).decode("utf-8", errors="replace")
    if rdtype == "MX":
        exchange = rdata.exchange.to_text(omit_final_dot=True)  # type: ignore[attr-defined]
        return f"{rdata.preference} {exchange}"  # type: ignore[attr-defined]
    if rdtype in ("PTR", "CNAME", "NS"):
        return str(rdata.target.to_text(omit_final_dot=True))  # type: ignore[attr-defined]
    return str(rdata.to_text())  # type: ignore[attr-defined]


class DnsResolver:
    """Implements ``mailsift.core.protocols.Resolver`` on a private dnspython resolver."""

    #: After this many consecutive slow failures the resolver answers temperror at once for
    #: ``OUTAGE_HOLD`` seconds, then lets queries through again (the first failure after that
    #: starts a new hold): during a DNS outage every check would otherwise wait its full
    #: timeout, and the gateway's scan workers would stall.
    OUTAGE_AFTER = 3
    OUTAGE_HOLD = 15.0

    def __init__(self, resolver: dns.resolver.Resolver, cache_size: int = 10000) -> None:
        self._resolver = resolver
        self.lifetime = float(resolver.lifetime)
        self.cache = TtlCache(cache_size)
        self._timeouts = 0
        self._outage_until = 0.0
        self._lock = threading.Lock()

    def query(self, name: str, rdtype: str, *, lifetime: float | None = None) -> DnsAnswer:
        """``lifetime`` caps this question's wait below the configured one (a message's
        remaining DNS budget, see :class:`BudgetedResolver`)."""
        name = name.rstrip(".").lower()
        rdtype = rdtype.upper()
        key = (name, rdtype)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        now = time.monotonic()
        with self._lock:
            if now < self._outage_until:
                raise DnsTempError(f"{name}/{rdtype}: DNS unreachable (recent timeouts), "
                                   "not asked")
        started = time.monotonic()
        try:
            answer = self._lookup(name, rdtype, lifetime)
        except BaseException:
            # Count the failures that made us wait (timeouts, unreachable servers being
            # retried, or a scan deadline that cut the wait short); a quick SERVFAIL for one
            # broken domain says nothing about an outage.
            if time.monotonic() - started >= 0.9 * float(self._resolver.timeout):
                with self._lock:
                    self._timeouts += 1
                    if self._timeouts >= self.OUTAGE_AFTER:
                        self._outage_until = time.monotonic() + self.OUTAGE_HOLD
            raise
        with self._lock:
            self._timeouts = 0
            self._outage_until = 0.0
        self.cache.put(key, answer)
        return answer

    def _lookup(self, name: str, rdtype: str, lifetime: float | None = None) -> DnsAnswer:
        try:
            qname = dns.name.from_text(name)
        except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
            # A name that cannot exist in the DNS is a non-existent domain, not a DNS outage.
            del exc
            return DnsAnswer(name, rdtype, "NXDOMAIN", (), 0)
        try:
            ans = self._resolver.resolve(qname, rdtype, search=False, raise_on_no_answer=False,
                                         lifetime=lifetime)
        except dns.resolver.NXDOMAIN:
            return DnsAnswer(name, rdtype, "NXDOMAIN", (), _NEGATIVE_TTL)
        except dns.resolver.YXDOMAIN:
            return DnsAnswer(name, rdtype, "NXDOMAIN", (), _NEGATIVE_TTL)
        except dns.resolver.NoNameservers as exc:
            # Every server answered SERVFAIL/REFUSED or was unreachable.
            raise DnsTempError(f"{name}/{rdtype}: no nameserver could answer ({exc})") from exc
        except dns.resolver.LifetimeTimeout as exc:
            raise DnsTempError(f"{name}/{rdtype}: timeout") from exc
        except dns.exception.Timeout as exc:
            raise DnsTempError(f"{name}/{rdtype}: timeout") from exc
        except dns.exception.DNSException as exc:
            raise DnsTempError(f"{name}/{rdtype}: {exc.__class__.__name__}: {exc}") from exc
        except OSError as exc:
            raise DnsTempError(f"{name}/{rdtype}: network error {exc}") from exc
        if ans.rrset is None:
            ttl = _negative_ttl(ans.response)
            return DnsAnswer(name, rdtype, "NOERROR", (), ttl)
        records = tuple(_rdata_text(rdtype, rd) for rd in ans.rrset)
        return DnsAnswer(name, rdtype, "NOERROR", records, int(ans.rrset.ttl))


class BudgetedResolver:
    """One message's view of a resolver: all its questions together get ``seconds``.

    Each question waits at most what is left of the budget; once it is spent every further
    question fails at once with ``DnsTempError``, so the checks report ``temperror`` and keep
    what they already know. The budget is below the auth detector's time budget: when a
    domain's name servers drop queries, each question would otherwise wait its full lifetime
    (4 s) and the detector's deadline (8 s) would throw every result away."""

    def __init__(self, inner: Resolver, seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.clock = clock
        self.deadline = clock() + seconds

    def query(self, name: str, rdtype: str) -> DnsAnswer:
        left = self.deadline - self.clock()
        if left <= 0:
            raise DnsTempError(f"{name}/{rdtype}: the message's DNS budget is spent, not asked")
        if isinstance(self.inner, DnsResolver):
            return self.inner.query(name, rdtype, lifetime=min(left, self.inner.lifetime))
        return self.inner.query(name, rdtype)


def _negative_ttl(response: dns.message.Message) -> int:
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA:
            return int(min(rrset.ttl, rrset[0].minimum))
    return _NEGATIVE_TTL


def parse_server(server: str) -> tuple[str, int]:
    """``"HOST:PORT"``, ``"HOST"`` or ``"[V6]:PORT"`` -> (host, port)."""
    server = server.strip()
    if not server:
        raise ConfigError("empty DNS server")
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        port_text = rest.lstrip(":") or "53"
    elif server.count(":") == 1:
        host, port_text = server.split(":")
    else:
        host, port_text = server, "53"
    try:
        port = int(port_text)
    except ValueError as exc:
        raise ConfigError(f"bad DNS server port in {server!r}") from exc
    if not 0 < port < 65536:
        raise ConfigError(f"bad DNS server port in {server!r}")
    return host, port


def make_resolver(settings: DnsSettings, server: str | None = None) -> Resolver:
    """Build the resolver for a scan.

    ``server`` (``HOST:PORT`` from ``mailsift scan --dns``) overrides the configured nameservers.
    With neither, the system configuration (``/etc/resolv.conf``) is read.
    """
    if server:
        host, port = parse_server(server)
        nameservers, ns_port = [host], port
    else:
        nameservers, ns_port = list(settings.nameservers), settings.port
    if nameservers:
        for ns in nameservers:
            try:
                ipaddress.ip_address(ns)
            except ValueError as exc:
                raise ConfigError(f"DNS nameserver must be an IP address, got {ns!r}") from exc
        res = dns.resolver.Resolver(configure=False)
        res.nameservers = nameservers
        res.port = ns_port
    else:
        try:
            res = dns.resolver.Resolver(configure=True)
        except dns.resolver.NoResolverConfiguration as exc:
            raise ConfigError("no DNS nameservers configured and none in the system") from exc
    res.timeout = settings.timeout
    res.lifetime = settings.lifetime
    # SERVFAIL must surface as temperror, not be retried into a different (stale) answer.
    res.retry_servfail = False
    return DnsResolver(res, settings.cache_size)
