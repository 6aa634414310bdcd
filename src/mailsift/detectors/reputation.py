"""Reputation detector: DNS blocklists for the connecting client and the message's domains.

* IP lists (``[[reputation.ip_lists]]``, DNSBL such as Spamhaus ZEN) are asked about the client
  IP, optionally the first Received hop below it, and bare public IPs written in links.
* Domain lists (``[[reputation.domain_lists]]``: Spamhaus DBL, SURBL, URIBL) are asked about the
  registrable domain (public suffix list) of every link host, after unwrapping redirectors and
  security rewriters as the links detector does, and of the From, Reply-To and envelope-sender
  domains.

Codes: ``RBL_<NAME>`` and ``URIBL_<NAME>`` (weight from the list's return-code map, evidence
naming the listed IP or domain, why it was asked and the answer); operational findings of
weight 0 that never decide anything: ``REPUTATION_LIST_REFUSED`` (127.255.255.x, or an answer
outside 127.0.0.0/8), ``REPUTATION_DNS_ERROR`` (timeout, SERVFAIL, budget spent: "not
listed"), ``REPUTATION_LOOKUP_CAP`` (``max_lookups`` reached) and ``REPUTATION_OFFLINE``.

I/O and cost: queries are sent when the scan starts (``prefetch``, before authentication) and
collected at the reputation stage, so they overlap the rest of the scan; all of one message's
queries share ``[reputation] budget``. The resolver is the list resolver the composition root
hands over (``Services.list_resolver``, a ``BatchResolver``: every question written to one
socket at once, no threads; its own cache and outage state, so a list that times out never
holds up authentication's DNS). Any other ``Resolver`` (tests, embedding) is asked on a small
thread pool.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from mailsift.auth.batch import Batch, BatchResolver
from mailsift.auth.relays import TrustedRelays, parse_received
from mailsift.config.reputation import DnsListSettings, ReputationSettings
from mailsift.config.schema import Settings
from mailsift.core.context import ScanContext
from mailsift.core.envelope import Envelope
from mailsift.core.errors import ConfigError
from mailsift.core.findings import Finding, Stage
from mailsift.core.message import ParsedMessage
from mailsift.core.protocols import Resolver
from mailsift.detectors._common import MAX_EVIDENCE
from mailsift.detectors._dnslists import (
    Outcome,
    Query,
    Verdict,
    collect,
    ip_query_name,
    is_public_ip,
    outcome_of,
    start_lookups,
)
from mailsift.detectors._unwrap import unwrap, url_chain
from mailsift.detectors.base import Services
from mailsift.detectors.spec import CodeSpec, DetectorSpec
from mailsift.parsing import registrable_domain

__all__ = ["OPERATIONAL", "SPEC", "ReputationDetector", "build", "list_code"]

#: operational code -> description (weight 0, no family: they never move a verdict)
OPERATIONAL: Mapping[str, str] = {
    "REPUTATION_LIST_REFUSED": "A DNS list refused the query or gave a meaningless answer "
                               "(not counted as a listing)",
    "REPUTATION_DNS_ERROR": "A DNS list did not answer in time (treated as not listed)",
    "REPUTATION_LOOKUP_CAP": "More list lookups than [reputation] max_lookups; the rest skipped",
    "REPUTATION_OFFLINE": "Offline scan: DNS lists were not queried",
}


def list_code(kind: str, name: str) -> str:
    """``RBL_<NAME>`` for an IP list, ``URIBL_<NAME>`` for a domain list."""
    return f"{'RBL' if kind == 'ip' else 'URIBL'}_{name}"


class _Pending:
    """Lookups started for one message (by ``prefetch``), picked up by ``run``: a batch on the
    list resolver, or futures on the thread pool for any other resolver."""

    def __init__(self, message: ParsedMessage, deadline: float, queries: list[Query],
                 skipped: int, *, batch: Batch | None = None,
                 futures: list[tuple[Query, Future[Outcome]]] | None = None) -> None:
        self.message = message
        self.deadline = deadline
        self.queries = queries
        self.skipped = skipped
        self.batch = batch
        self.futures = futures or []

    def outcomes(self) -> list[Outcome]:
        if self.batch is None:
            return collect(self.futures, self.deadline)
        results = self.batch.collect(self.deadline)
        return [outcome_of(q, results.get(q.name)) for q in self.queries]


class ReputationDetector:
    name = "reputation"
    stage = Stage.REPUTATION

    def __init__(self, settings: ReputationSettings, resolver: Resolver | BatchResolver | None, *,
                 trusted_relays: tuple[str, ...] = (), max_urls: int = 200) -> None:
        self.settings = settings
        self.resolver = resolver
        self.ip_lists = tuple(x for x in settings.ip_lists if x.enabled)
        self.domain_lists = tuple(x for x in settings.domain_lists if x.enabled)
        self.relays = TrustedRelays(trusted_relays)
        self.max_urls = max_urls
        self.skip = frozenset(settings.skip_domains)
        self.codes = frozenset({*OPERATIONAL, *(list_code("ip", x.name) for x in self.ip_lists),
                                *(list_code("domain", x.name) for x in self.domain_lists)})
        self._pool: ThreadPoolExecutor | None = None
        self._pending: _Pending | None = None

    def versions(self) -> Mapping[str, str]:
        return {}

    # --- what to ask -----------------------------------------------------------------------

    def queries(self, msg: ParsedMessage, envelope: Envelope) -> Iterator[Query]:
        """Every question for this message, most telling first (client, sender domains, links),
        each subject once per list."""
        seen: set[tuple[str, str]] = set()
        for subject, role in self._subjects(msg, envelope):
            is_ip = role in ("client", "received") or is_public_ip(subject)
            for dnslist in (self.ip_lists if is_ip else self.domain_lists):
                if (dnslist.name, subject) in seen:
                    continue
                seen.add((dnslist.name, subject))
                name = (ip_query_name(subject, dnslist.zone) if is_ip
                        else f"{subject}.{dnslist.zone}")
                yield Query(dnslist, subject, role, name, "ip" if is_ip else "domain")

    def _subjects(self, msg: ParsedMessage, envelope: Envelope) -> Iterator[tuple[str, str]]:
        client = _canonical_ip(envelope.client_ip or "")
        if self.ip_lists and client and is_public_ip(client):
            yield client, "client"
        if self.ip_lists and self.settings.received_hop:
            hop = self._received_hop(msg, client)
            if hop:
                yield hop, "received"
        if self.domain_lists and self.settings.check_sender_domains:
            senders = [("from", a.domain) for a in msg.from_addrs[:1] if a.domain]
            senders += [("reply-to", a.domain) for a in msg.reply_to if a.domain]
            if envelope.mail_from_domain:
                senders.append(("sender", envelope.mail_from_domain))
            for role, domain in senders:
                reg = self._domain(domain)
                if reg:
                    yield reg, role
        yield from self._url_subjects(msg)

    def _url_subjects(self, msg: ParsedMessage) -> Iterator[tuple[str, str]]:
        seen: set[str] = set()
        for url in msg.urls[: self.max_urls]:
            if url.url in seen:
                continue
            seen.add(url.url)
            wrapped = unwrap(url.url, url.host)
            if wrapped.opaque:
                continue  # an ESP tracker's or rewriter's host is not where the link goes
            hops = url_chain(url, wrapped)
            # judge the destination and every unknown host that merely carries a URL, never
            # a known wrapper's own host (links detector, same rule)
            judged = [h for h, kind in zip(hops, wrapped.kinds, strict=False)
                      if kind == "tracker"] + [hops[-1]]
            for link in judged:
                if link.is_ip:
                    ip = _canonical_ip(link.host)
                    if self.ip_lists and ip and is_public_ip(ip):
                        yield ip, "url"
                    continue
                reg = self._domain(link.host)
                if reg:
                    yield reg, "url"

    def _domain(self, host: str) -> str:
        host = host.strip().strip(".").lower()
        if not host or "." not in host:
            return ""
        try:
            host.encode("ascii")
        except UnicodeEncodeError:
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                return ""
        reg = registrable_domain(host)
        if not reg or "." not in reg or reg in self.skip:
            return ""
        return reg

    def _received_hop(self, msg: ParsedMessage, client: str) -> str:
        """The first Received hop naming a public client that is neither the connecting client
        nor one of our relays: the host that handed the message to our client (as the client
        wrote it down)."""
        for value in msg.header("received")[:20]:
            ip = _canonical_ip(parse_received(value).client_ip)
            if ip and ip != client and is_public_ip(ip) and not self.relays.ip(ip):
                return ip
        return ""

    # --- asking ----------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.settings.concurrency,
                                            thread_name_prefix="dnslist")
        return self._pool

    def prefetch(self, msg: ParsedMessage, envelope: Envelope, *, offline: bool = False) -> None:
        """Send this message's queries now (the pipeline calls this when the scan starts)."""
        self._pending = None
        if offline or self.resolver is None or not (self.ip_lists or self.domain_lists):
            return
        wanted = list(self.queries(msg, envelope))
        cap = self.settings.max_lookups
        asked, skipped = wanted[:cap], max(0, len(wanted) - cap)
        deadline = time.monotonic() + self.settings.budget
        if isinstance(self.resolver, BatchResolver):
            batch = self.resolver.start([q.name for q in asked])
            self._pending = _Pending(msg, deadline, asked, skipped, batch=batch)
        else:
            futures = start_lookups(self._executor(), self.resolver, asked,
                                    self.settings.budget)
            self._pending = _Pending(msg, deadline, asked, skipped, futures=futures)

    def run(self, ctx: ScanContext) -> Sequence[Finding]:
        if not (self.ip_lists or self.domain_lists):
            return []
        if ctx.offline or self.resolver is None:
            n = len(self.ip_lists) + len(self.domain_lists)
            return [_operational("REPUTATION_OFFLINE", (f"{n} DNS list(s) not queried",))]
        pending = self._pending
        if pending is None or pending.message is not ctx.message:
            self.prefetch(ctx.message, ctx.envelope)
            pending = self._pending
        assert pending is not None
        self._pending = None
        findings = self._findings(pending.outcomes())
        if pending.skipped:
            findings.append(_operational("REPUTATION_LOOKUP_CAP", (
                f"{pending.skipped} lookup(s) skipped (max_lookups = "
                f"{self.settings.max_lookups})",)))
        return findings

    def _findings(self, outcomes: Sequence[Outcome]) -> list[Finding]:
        listed: dict[str, list[Outcome]] = {}
        refused: list[str] = []
        errors: list[str] = []
        for o in outcomes:
            q = o.query
            if o.verdict is Verdict.LISTED:
                listed.setdefault(list_code(q.kind, q.dnslist.name), []).append(o)
            elif o.verdict in (Verdict.REFUSED, Verdict.BOGUS):
                refused.append(f"{q.dnslist.name} ({q.dnslist.zone}): {q.name}: {o.detail}")
            elif o.verdict in (Verdict.ERROR, Verdict.UNASKED):
                errors.append(f"{q.dnslist.name} ({q.dnslist.zone}): {q.name}: {o.detail}")
        out = [_listing(code, hits) for code, hits in listed.items()]
        if refused:
            out.append(_operational("REPUTATION_LIST_REFUSED", tuple(refused)))
        if errors:
            out.append(_operational("REPUTATION_DNS_ERROR", tuple(errors)))
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _canonical_ip(text: str) -> str:
    """``[IPv6:2001:DB8::1]`` -> ``2001:db8::1``; ``""`` for anything that is not an address
    (decimal or hex IPv4 notations in links included: lists are asked in dotted form)."""
    text = text.strip().strip("[]").removeprefix("IPv6:").removeprefix("ipv6:")
    try:
        addr = ipaddress.ip_address(int(text, 0) if text.isdigit() or text.lower().startswith(
            "0x") else text)
    except ValueError:
        return ""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def _operational(code: str, evidence: tuple[str, ...]) -> Finding:
    return Finding(code=code, weight=0.0, evidence=evidence[:MAX_EVIDENCE], detector="reputation",
                   category=None, description=OPERATIONAL[code])


def _listing(code: str, hits: list[Outcome]) -> Finding:
    """One finding per list: the strongest code decides weight and family; the evidence names
    each listed subject, why it was asked and the answer."""
    best = max(((c, o) for o in hits for c in o.codes), key=lambda pair: pair[0].weight)
    evidence = []
    for o in hits:
        meanings = ", ".join(f"{a}{' ' + c.meaning if c.meaning else ''}"
                             for a, c in zip(o.answers, o.codes, strict=False))
        evidence.append(f"{o.query.subject} ({o.query.role}) listed: {meanings}")
    dnslist: DnsListSettings = hits[0].query.dnslist
    return Finding(code=code, weight=best[0].weight, evidence=tuple(evidence[:MAX_EVIDENCE]),
                   detector="reputation", category=best[0].category,
                   description=f"Listed on {dnslist.name} ({dnslist.zone})")


def build(settings: Settings, services: Services) -> ReputationDetector:
    resolver: Resolver | BatchResolver | None = services.list_resolver or services.resolver
    d = settings.detectors
    detector_budget = d.timeouts_ms.get("reputation", d.timeout_ms) / 1000.0
    if settings.reputation.configured and settings.reputation.budget >= detector_budget:
        raise ConfigError(f"[reputation] budget ({settings.reputation.budget:g} s) must be below "
                          f"the detector's time budget ({detector_budget:g} s), or a slow list "
                          "ends in DETECTOR_TIMEOUT instead of 'not listed'",
                          source="reputation")
    return ReputationDetector(settings.reputation, resolver,
                              trusted_relays=settings.auth.trusted_relays,
                              max_urls=settings.links.max_urls)


SPEC = DetectorSpec(
    name="reputation", stage=Stage.REPUTATION, order=50, prefix="REPUTATION_",
    codes={code: CodeSpec(0.0, None, text) for code, text in OPERATIONAL.items()},
    settings=ReputationSettings, factory=build,
    dynamic_codes="`RBL_<NAME>` for each configured `[[reputation.ip_lists]]` and "
                  "`URIBL_<NAME>` for each `[[reputation.domain_lists]]`, weighted and "
                  "classed by the list's return codes",
    dynamic_prefixes=("RBL_", "URIBL_"),
    summary="DNS blocklists for the client IP, link hosts and sender domains (asks nothing "
            "until lists are configured)",
)
