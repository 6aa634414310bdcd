"""The dnspython resolver against the local DNS server: answers, errors, cache."""

from __future__ import annotations

import pytest

from mailsift.auth.resolver import TtlCache, make_resolver, parse_server
from mailsift.config.schema import DnsSettings
from mailsift.core.errors import ConfigError, DnsTempError
from mailsift.core.protocols import DnsAnswer, Resolver

ZONES = {
    "example.com": {
        "A": ["192.0.2.1"],
        "MX": ["10 mx.example.com"],
        "TXT": ["v=spf1 -all", "x" * 600],
        "ttl": 120,
    },
    "www.example.com": {"CNAME": "example.com"},
    "deep.sub.example.com": {"A": ["192.0.2.2"]},
    "broken.example": {"behaviour": "servfail"},
    "refused.example": {"behaviour": "refused"},
    "slow.example": {"behaviour": {"TXT": "timeout"}, "A": ["192.0.2.3"]},
    "big.example": {"TXT": ["y" * 1500], "truncate": True},
}


def test_answers_have_the_documented_shapes(dns):
    srv = dns(ZONES)
    r = make_resolver(DnsSettings(timeout=0.3, lifetime=0.5), srv.address)
    assert isinstance(r, Resolver)
    assert r.query("example.com", "A").records == ("192.0.2.1",)
    assert r.query("example.com", "MX").records == ("10 mx.example.com",)
    txt = r.query("EXAMPLE.com.", "TXT")
    # A 600-byte TXT record arrives as several character-strings and is joined.
    assert set(txt.records) == {"v=spf1 -all", "x" * 600}
    assert txt.ttl == 120
    assert r.query("www.example.com", "A").records == ("192.0.2.1",)


def test_nxdomain_and_nodata_are_answers(dns):
    srv = dns(ZONES)
    r = make_resolver(DnsSettings(timeout=0.3, lifetime=0.5), srv.address)
    nx = r.query("nope.example.com", "A")
    assert nx.nxdomain and nx.records == ()
    nodata = r.query("example.com", "AAAA")
    assert nodata.rcode == "NOERROR" and nodata.records == ()
    ent = r.query("sub.example.com", "A")  # empty non-terminal
    assert ent.rcode == "NOERROR" and ent.records == ()


@pytest.mark.parametrize("name,rdtype", [("broken.example", "A"), ("refused.example", "A"),
                                          ("slow.example", "TXT")])
def test_servfail_refused_and_timeout_raise_temperror(dns, name, rdtype):
    srv = dns(ZONES)
    r = make_resolver(DnsSettings(timeout=0.2, lifetime=0.4), srv.address)
    with pytest.raises(DnsTempError):
        r.query(name, rdtype)
    # The same name still answers other types: the failure is per question.
    if name == "slow.example":
        assert r.query(name, "A").records == ("192.0.2.3",)


def test_truncated_udp_answer_retries_over_tcp(dns):
    srv = dns(ZONES)
    r = make_resolver(DnsSettings(timeout=0.5, lifetime=1.0), srv.address)
    assert r.query("big.example", "TXT").records == ("y" * 1500,)
    protocols = [q.protocol for q in srv.queries if q.name == "big.example"]
    assert protocols == ["udp", "tcp"]


def test_cache_answers_repeat_questions_without_asking(dns):
    srv = dns(ZONES)
    r = make_resolver(DnsSettings(timeout=0.3, lifetime=0.5, cache_size=10), srv.address)
    r.query("example.com", "A")
    r.query("example.com", "A")
    r.query("nope.example.com", "A")
    r.query("nope.example.com", "A")
    assert srv.count("example.com", "A") == 1
    assert srv.count("nope.example.com", "A") == 1


def test_ttl_cache_expires_and_is_bounded():
    now = [1000.0]
    cache = TtlCache(2, clock=lambda: now[0])
    a = DnsAnswer("a.example", "A", "NOERROR", ("192.0.2.1",), ttl=30)
    cache.put(("a.example", "A"), a)
    assert cache.get(("a.example", "A")) == a
    now[0] += 31
    assert cache.get(("a.example", "A")) is None
    for i in range(5):
        cache.put((f"n{i}.example", "A"), DnsAnswer(f"n{i}", "A", "NOERROR", ("1.1.1.1",), 300))
    assert len(cache) == 2
    assert cache.get(("n4.example", "A")) is not None
    assert cache.get(("n0.example", "A")) is None


def test_parse_server_forms():
    assert parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_server("127.0.0.1") == ("127.0.0.1", 53)
    assert parse_server("[::1]:5353") == ("::1", 5353)
    assert parse_server("::1") == ("::1", 53)
    for bad in ("127.0.0.1:0", "127.0.0.1:http", ""):
        with pytest.raises(ConfigError):
            parse_server(bad)


def test_configured_nameservers_are_used_and_must_be_ips(dns):
    srv = dns(ZONES)
    r = make_resolver(DnsSettings(nameservers=("127.0.0.1",), port=srv.port, timeout=0.3,
                                  lifetime=0.5))
    assert r.query("example.com", "A").records == ("192.0.2.1",)
    with pytest.raises(ConfigError):
        make_resolver(DnsSettings(), "localhost:53")


def test_outage_fails_fast_after_repeated_timeouts():
    """During a DNS outage every check would wait its full timeout and stall the scan workers;
    after a few slow failures the resolver answers temperror at once (one probe per period)."""
    import time

    from mailsift.testing.dns import DnsServer

    zones = {f"{n}.example.org": {"behaviour": "timeout"} for n in ("a0", "a1", "a2", "b")}
    with DnsServer(zones) as srv:
        resolver = make_resolver(DnsSettings(timeout=0.2, lifetime=0.3), f"127.0.0.1:{srv.port}")
        for i in range(3):
            with pytest.raises(DnsTempError):
                resolver.query(f"a{i}.example.org", "TXT")
        start = time.monotonic()
        with pytest.raises(DnsTempError, match="not asked"):
            resolver.query("b.example.org", "TXT")
        assert time.monotonic() - start < 0.1
