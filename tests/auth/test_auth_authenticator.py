"""The Authenticator end to end against the local DNS server, plus its header and explanation."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import authres
import pytest

from mailsift.auth import OFFLINE_NOTE, Authenticator, describe
from mailsift.config.schema import AuthSettings
from mailsift.core.auth import AuthStatus
from mailsift.core.envelope import Connection, Envelope
from mailsift.parsing import parse_message
from mailsift.testing.signing import dkim_sign, simple_message


@pytest.fixture
def server(dns, keys):
    return dns({
        "example.com": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"], "A": ["192.0.2.1"]},
        "mail.example.com": {"TXT": ["v=spf1 ip4:192.0.2.10 -all"], "A": ["192.0.2.10"]},
        "_dmarc.example.com": {"TXT": ["v=DMARC1; p=reject"]},
        "s1._domainkey.example.com": {"TXT": [keys["rsa"].record]},
        "ed._domainkey.example.com": {"TXT": [keys["ed"].record]},
        "attacker.example": {"TXT": ["v=spf1 ip4:203.0.113.0/24 -all"]},
        "partner.example": {"TXT": ["v=spf1 ip4:198.51.100.0/24 -all"]},
        "_dmarc.nopolicy.example": {"TXT": ["v=DMARC1; p=none"]},
    })


def signed(keys, **kw) -> bytes:
    raw = dkim_sign(simple_message(**kw), "example.com", "s1", keys["rsa"])
    return dkim_sign(raw, "example.com", "ed", keys["ed"])


def test_genuine_message_passes_everything(authenticate, server, keys):
    res = authenticate(signed(keys), server)
    assert res.spf.result is AuthStatus.PASS and res.spf_helo.result is AuthStatus.PASS
    assert [d.result for d in res.dkim] == [AuthStatus.PASS, AuthStatus.PASS]
    assert res.dmarc.result is AuthStatus.PASS and res.compauth.result is AuthStatus.PASS
    assert not res.offline and res.authserv_id == "mailsift.local"


def test_header_is_rfc8601_with_our_authserv_id(authenticate, server, keys):
    res = authenticate(signed(keys), server, authserv_id="MX.Ours.Example")
    parsed = authres.all_features().parse_value(res.header)
    assert parsed.authserv_id == "mx.ours.example"
    methods = [r.method for r in parsed.results]
    assert methods == ["spf", "spf", "dkim", "dkim", "arc", "dmarc", "compauth"]
    assert "header.from=example.com" in res.header and "policy.dmarc=none" in res.header
    assert res.to_dict()["header"] == res.header


def test_direct_spoof_fails_composite_auth(authenticate, server):
    res = authenticate(simple_message(from_addr="CEO <ceo@example.com>"), server,
                       ip="203.0.113.66", mail_from="x@attacker.example", helo="attacker.example")
    assert res.spf.result is AuthStatus.PASS  # the attacker's own domain
    assert res.dmarc.result is AuthStatus.FAIL and res.dmarc.disposition == "reject"
    assert res.compauth.result is AuthStatus.FAIL
    lines = describe(res)
    assert any("NOT authenticated" in line for line in lines)
    assert any("disposition for this message: reject" in line for line in lines)


def test_offline_skips_dns_and_says_so(authenticate):
    res = authenticate(simple_message(), None)
    assert res.offline and res.notes[0] == OFFLINE_NOTE
    assert res.spf is None and res.dkim == () and res.dmarc is None
    assert res.header == "mailsift.local; none"
    assert describe(res)[0].startswith("Authentication not checked: offline")


def test_missing_client_ip_is_noted_not_guessed(authenticate, server, keys):
    res = authenticate(signed(keys), server, ip=None)
    assert res.spf is None and any("client IP unknown" in n for n in res.notes)
    assert res.dmarc.result is AuthStatus.PASS  # DKIM alone aligns


def test_null_sender_uses_helo_identity(authenticate, server):
    res = authenticate(simple_message(from_addr="MAILER-DAEMON <postmaster@mail.example.com>"),
                       server, mail_from="", helo="mail.example.com")
    assert res.spf.identity == "postmaster@mail.example.com"
    assert res.spf.result is AuthStatus.PASS
    assert res.dmarc.spf_aligned


def test_envelope_recovered_from_trusted_relay(server, keys, resolver_for):
    received = ("Received: from mail.example.com (mail.example.com [192.0.2.10]) by "
                "mx1.ours.example (Postfix) with ESMTPS id 1; Thu, 26 Nov 2026 10:00:01 +0000")
    raw = simple_message(extra_headers=["Return-Path: <alice@example.com>", received])
    auth = Authenticator(AuthSettings(trusted_relays=("mx1.ours.example",)),
                         resolver_for(server))
    res = auth.authenticate(parse_message(raw), Envelope())
    assert res.spf.result is AuthStatus.PASS and res.spf.client_ip == "192.0.2.10"
    assert res.dmarc.result is AuthStatus.PASS
    assert any("Received" in n for n in res.notes)


def test_spoof_allow_by_client_network(authenticate, server):
    raw = simple_message(from_addr="Billing <billing@example.com>")
    kw = {"ip": "198.51.100.9", "mail_from": "x@partner.example", "helo": "out.partner.example"}
    assert authenticate(raw, server, **kw).compauth.result is AuthStatus.FAIL
    res = authenticate(raw, server, spoof_allow=("example.com=198.51.100.0/24",), **kw)
    assert res.compauth.result is AuthStatus.SOFTPASS


def test_spoof_allow_by_domain_needs_that_domain_authenticated(authenticate, server):
    raw = simple_message(from_addr="Billing <billing@example.com>")
    ok = authenticate(raw, server, ip="198.51.100.9", mail_from="x@partner.example",
                      spoof_allow=("example.com=partner.example",))
    assert ok.compauth.result is AuthStatus.SOFTPASS
    # Same claim from a host partner.example does not authorize: no pair match.
    bad = authenticate(raw, server, ip="203.0.113.9", mail_from="x@partner.example",
                       spoof_allow=("example.com=partner.example",))
    assert bad.compauth.result is AuthStatus.FAIL


def test_several_from_domains_report_the_failing_one(authenticate, server, keys):
    raw = signed(keys, from_addr="alice@example.com, mallory@nopolicy.example")
    res = authenticate(raw, server)
    assert res.dmarc.from_domain == "nopolicy.example"
    assert res.dmarc.result is AuthStatus.FAIL
    assert any("several From domains" in n for n in res.notes)


def test_authenticator_is_safe_from_a_thread_pool(server, keys, resolver_for, dns):
    good = Authenticator(AuthSettings(), resolver_for(server))
    # A second DNS view in which example.com authorizes nothing.
    hostile = dns({"example.com": {"TXT": ["v=spf1 -all"]},
                   "_dmarc.example.com": {"TXT": ["v=DMARC1; p=reject"]}})
    bad = Authenticator(AuthSettings(), resolver_for(hostile))
    msg = parse_message(simple_message())
    env = Envelope(mail_from="alice@example.com",
                   connection=Connection(client_ip="192.0.2.10", helo="mail.example.com"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        jobs = [(pool.submit(a.authenticate, msg, env), want)
                for _ in range(6)
                for a, want in ((good, AuthStatus.PASS), (bad, AuthStatus.FAIL))]
        for job, want in jobs:
            res = job.result()
            assert res.spf.result is want and res.dmarc.result is want
