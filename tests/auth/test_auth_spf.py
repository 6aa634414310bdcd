"""SPF (RFC 7208) through pyspf and our resolver, against the local DNS server."""

from __future__ import annotations

import threading

import pytest
import spf

from mailsift.auth.spf_check import check_spf, check_spf_helo
from mailsift.core.auth import AuthStatus

ZONES: dict[str, dict[str, object]] = {
    "example.com": {"TXT": ["v=spf1 ip4:192.0.2.0/24 include:_spf.esp.example -all"],
                    "A": ["192.0.2.1"]},
    "_spf.esp.example": {"TXT": ["v=spf1 ip4:198.51.100.0/24 ip6:2001:db8::/32 ~all"]},
    "soft.example": {"TXT": ["v=spf1 ip4:192.0.2.0/24 ~all"]},
    "neutral.example": {"TXT": ["v=spf1 ?all"]},
    "redir.example": {"TXT": ["v=spf1 redirect=example.com"]},
    "mx.example": {"TXT": ["v=spf1 mx a:relay.mx.example -all"], "MX": ["10 in.mx.example"]},
    "in.mx.example": {"A": ["203.0.113.7"]},
    "relay.mx.example": {"A": ["203.0.113.8"]},
    # %{ir}.%{l}._spf.%{d}: the exists check only passes for this local part and IP.
    "macro.example": {"TXT": ["v=spf1 exists:%{ir}.%{l}._spf.%{d} -all"]},
    "10.2.0.192.alice._spf.macro.example": {"A": ["127.0.0.2"]},
    "two.example": {"TXT": ["v=spf1 -all", "v=spf1 +all"]},
    "syntax.example": {"TXT": ["v=spf1 ip4:192.0.2.300 -all"]},
    "void.example": {"TXT": ["v=spf1 a:nx1.void.example a:nx2.void.example "
                             "a:nx3.void.example ip4:192.0.2.0/24 -all"]},
    "slowinc.example": {"TXT": ["v=spf1 include:slow.example -all"]},
    "slow.example": {"behaviour": "timeout"},
    "fail.example": {"behaviour": "servfail"},
    "helo.example.com": {"TXT": ["v=spf1 ip4:192.0.2.10 -all"]},
}
# 11 includes, each costing one lookup: RFC 7208 4.6.4 allows 10.
ZONES["many.example"] = {"TXT": ["v=spf1 " + " ".join(f"include:i{n}.many.example"
                                                       for n in range(11)) + " -all"]}
for n in range(11):
    ZONES[f"i{n}.many.example"] = {"TXT": [f"v=spf1 ip4:10.0.{n}.0/24 ?all"]}
ZONES["ten.example"] = {"TXT": ["v=spf1 " + " ".join(f"include:i{n}.many.example"
                                                     for n in range(9)) + " ip4:192.0.2.10 -all"]}


@pytest.fixture
def resolver(dns, resolver_for):
    return resolver_for(dns(ZONES))


@pytest.mark.parametrize(
    "ip,sender,expected",
    [
        ("192.0.2.10", "alice@example.com", AuthStatus.PASS),
        ("203.0.113.99", "alice@example.com", AuthStatus.FAIL),
        ("198.51.100.20", "alice@example.com", AuthStatus.PASS),  # via include
        ("2001:db8::25", "alice@example.com", AuthStatus.PASS),  # ip6 in the include
        ("203.0.113.99", "alice@soft.example", AuthStatus.SOFTFAIL),
        ("203.0.113.99", "alice@neutral.example", AuthStatus.NEUTRAL),
        ("192.0.2.10", "alice@nospf.example", AuthStatus.NONE),
        ("192.0.2.10", "alice@redir.example", AuthStatus.PASS),
        ("203.0.113.99", "alice@redir.example", AuthStatus.FAIL),
        ("203.0.113.7", "alice@mx.example", AuthStatus.PASS),  # mx
        ("203.0.113.8", "alice@mx.example", AuthStatus.PASS),  # a:
        ("203.0.113.9", "alice@mx.example", AuthStatus.FAIL),
        ("192.0.2.10", "alice@macro.example", AuthStatus.PASS),
        ("192.0.2.10", "bob@macro.example", AuthStatus.FAIL),  # macro expands to another name
        ("192.0.2.10", "alice@two.example", AuthStatus.PERMERROR),  # two SPF records
        ("192.0.2.10", "alice@syntax.example", AuthStatus.PERMERROR),
        ("192.0.2.10", "alice@ten.example", AuthStatus.PASS),  # exactly 10 lookups
        ("192.0.2.10", "alice@many.example", AuthStatus.PERMERROR),  # 11 lookups
        ("192.0.2.10", "alice@void.example", AuthStatus.PERMERROR),  # 3 void lookups
    ],
)
def test_spf_results(resolver, ip, sender, expected):
    res = check_spf(ip, sender, "mail.example.com", resolver)
    assert res.result is expected, res.reason
    assert res.scope == "mailfrom"
    assert res.domain == sender.split("@")[1]
    assert res.client_ip == ip


def test_lookup_limit_reason_is_explained(resolver):
    res = check_spf("192.0.2.10", "alice@many.example", "h.example", resolver)
    assert "lookups" in res.reason.lower()
    res = check_spf("192.0.2.10", "alice@void.example", "h.example", resolver)
    assert "void" in res.reason.lower()


@pytest.mark.parametrize("sender", ["alice@slow.example", "alice@slowinc.example",
                                    "alice@fail.example"])
def test_dns_trouble_is_temperror_never_fail(resolver, sender):
    res = check_spf("192.0.2.10", sender, "h.example", resolver)
    assert res.result is AuthStatus.TEMPERROR


def test_null_sender_checks_postmaster_at_helo(resolver):
    res = check_spf("192.0.2.10", "", "helo.example.com", resolver)
    assert res.result is AuthStatus.PASS
    assert res.identity == "postmaster@helo.example.com"
    assert res.domain == "helo.example.com"
    bad = check_spf("192.0.2.11", "", "helo.example.com", resolver)
    assert bad.result is AuthStatus.FAIL


def test_helo_identity(resolver):
    assert check_spf_helo("192.0.2.10", "helo.example.com", resolver).result is AuthStatus.PASS
    assert check_spf_helo("192.0.2.99", "helo.example.com", resolver).result is AuthStatus.FAIL
    assert check_spf_helo("192.0.2.99", "[192.0.2.99]", resolver).result is AuthStatus.NONE


def test_bad_client_ip_is_permerror_not_a_crash(resolver):
    assert check_spf("not-an-ip", "a@example.com", "h", resolver).result is AuthStatus.PERMERROR


def test_pyspf_dns_is_ours_and_refuses_without_a_bound_resolver():
    from mailsift.auth import spf_check

    assert spf.DNSLookup is spf_check._lookup
    with pytest.raises(spf.TempError):
        spf.DNSLookup("example.com", "TXT")


def test_concurrent_checks_with_different_resolvers_do_not_mix(dns, resolver_for):
    # Two DNS views of the same domain: one authorizes the IP, the other forbids it.
    allow = resolver_for(dns({"shared.example": {"TXT": ["v=spf1 ip4:192.0.2.10 -all"]}}))
    deny = resolver_for(dns({"shared.example": {"TXT": ["v=spf1 -all"]}}))
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def worker(resolver, expected):
        barrier.wait()
        for _ in range(15):
            got = check_spf("192.0.2.10", "a@shared.example", "h.example", resolver).result
            if got is not expected:
                errors.append(f"expected {expected}, got {got}")

    threads = [threading.Thread(target=worker, args=(allow, AuthStatus.PASS)) for _ in range(4)]
    threads += [threading.Thread(target=worker, args=(deny, AuthStatus.FAIL)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
