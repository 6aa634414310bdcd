"""ARC (RFC 8617): mailing lists and forwarders, trusted and untrusted sealers, one and two hops."""

from __future__ import annotations

import pytest

from mailsift.auth.arc import parse_aar, sealer_trusted
from mailsift.core.auth import AuthStatus
from mailsift.testing.signing import arc_seal, dkim_sign, simple_message

ORIGINAL_AR = ("spf=pass smtp.mailfrom=alice@example.com; dkim=pass header.d=example.com; "
               "dmarc=pass header.from=example.com")


@pytest.fixture
def server(dns, keys):
    return dns({
        "example.com": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]},
        "_dmarc.example.com": {"TXT": ["v=DMARC1; p=reject"]},
        "s1._domainkey.example.com": {"TXT": [keys["rsa"].record]},
        "lists.example": {"TXT": ["v=spf1 ip4:198.51.100.0/24 -all"]},
        "arc._domainkey.lists.example": {"TXT": [keys["list"].record]},
        "fwd.example": {"TXT": ["v=spf1 ip4:203.0.113.0/24 -all"]},
        "arc._domainkey.fwd.example": {"TXT": [keys["fwd"].record]},
        "slow._domainkey.fwd.example": {"behaviour": "timeout"},
    })


def list_message(keys, aar: str = ORIGINAL_AR) -> bytes:
    """alice@example.com -> team@lists.example, which tags the subject and seals."""
    signed = dkim_sign(simple_message(), "example.com", "s1", keys["rsa"])
    tagged = signed.replace(b"Subject: Quarterly", b"Subject: [team] Quarterly")
    return arc_seal(tagged, "lists.example", "arc", keys["list"], "lists.example", aar)


def from_list(authenticate, raw, server, **settings):
    return authenticate(raw, server, ip="198.51.100.7", mail_from="team-bounces@lists.example",
                        helo="mx.lists.example", **settings)


def test_list_breaks_dkim_and_untrusted_seal_does_not_rescue(authenticate, server, keys):
    res = from_list(authenticate, list_message(keys), server)
    assert [d.result for d in res.dkim] == [AuthStatus.FAIL]
    assert res.spf.result is AuthStatus.PASS and not res.dmarc.spf_aligned
    assert res.dmarc.result is AuthStatus.FAIL and res.dmarc.disposition == "reject"
    assert res.arc.result is AuthStatus.PASS and res.arc.last_sealer == "lists.example"
    assert not res.arc.trusted
    assert res.compauth.result is AuthStatus.FAIL


def test_trusted_list_sealer_rescues(authenticate, server, keys):
    res = from_list(authenticate, list_message(keys), server,
                    trusted_arc_sealers=("lists.example",))
    assert res.arc.trusted and res.arc.sealed_dmarc == "pass"
    assert res.dmarc.result is AuthStatus.FAIL  # the result stays honest ...
    assert res.dmarc.disposition == "none"  # ... the policy is overridden
    assert "trusted_forwarder" in res.dmarc.reason
    assert res.compauth.result is AuthStatus.PASS
    assert "lists.example" in res.compauth.reason


def test_trusted_sealer_that_saw_a_failure_does_not_rescue(authenticate, server, keys):
    raw = list_message(keys, aar="spf=fail smtp.mailfrom=alice@example.com; dkim=none; "
                                 "dmarc=fail header.from=example.com")
    res = from_list(authenticate, raw, server, trusted_arc_sealers=("lists.example",))
    assert res.arc.result is AuthStatus.PASS and res.arc.trusted
    assert res.compauth.result is AuthStatus.FAIL


def test_aligned_dkim_pass_in_sealed_results_rescues(authenticate, server, keys):
    raw = list_message(keys, aar="dkim=pass header.d=mail.example.com")
    res = from_list(authenticate, raw, server, trusted_arc_sealers=("lists.example",))
    assert res.compauth.result is AuthStatus.PASS


def test_modified_after_sealing_breaks_the_chain(authenticate, server, keys):
    raw = list_message(keys).replace(b"the report", b"the invoice")
    res = from_list(authenticate, raw, server, trusted_arc_sealers=("lists.example",))
    assert res.arc.result is AuthStatus.FAIL
    assert res.compauth.result is AuthStatus.FAIL


def two_hops(keys) -> bytes:
    first = list_message(keys)
    return arc_seal(first, "fwd.example", "arc", keys["fwd"], "fwd.example",
                    "arc=pass header.as-d=lists.example; spf=pass "
                    "smtp.mailfrom=team-bounces@lists.example; dkim=fail header.d=example.com; "
                    "dmarc=fail header.from=example.com")


def test_two_hop_chain_validates_and_walks_back_through_trusted_sealers(
    authenticate, server, keys
):
    res = authenticate(two_hops(keys), server, ip="203.0.113.5", mail_from="fwd@fwd.example",
                       trusted_arc_sealers=("fwd.example", "lists.example"))
    assert res.arc.result is AuthStatus.PASS
    assert (res.arc.instances, res.arc.last_sealer) == (2, "fwd.example")
    assert res.compauth.result is AuthStatus.PASS  # lists.example (i=1) saw dmarc=pass


def test_two_hop_chain_with_untrusted_last_sealer_is_not_believed(authenticate, server, keys):
    res = authenticate(two_hops(keys), server, ip="203.0.113.5", mail_from="fwd@fwd.example",
                       trusted_arc_sealers=("lists.example",))
    assert res.arc.result is AuthStatus.PASS and not res.arc.trusted
    assert res.compauth.result is AuthStatus.FAIL


def test_two_hop_chain_only_last_sealer_trusted_uses_its_view(authenticate, server, keys):
    res = authenticate(two_hops(keys), server, ip="203.0.113.5", mail_from="fwd@fwd.example",
                       trusted_arc_sealers=("fwd.example",))
    assert res.arc.trusted
    assert res.compauth.result is AuthStatus.FAIL  # fwd.example itself saw dmarc=fail


def test_arc_key_timeout_is_temperror_and_compauth_undecided(authenticate, server, keys):
    signed = dkim_sign(simple_message(), "example.com", "s1", keys["rsa"])
    raw = arc_seal(signed.replace(b"Subject: Q", b"Subject: [x] Q"), "fwd.example", "slow",
                   keys["fwd"], "fwd.example", ORIGINAL_AR)
    res = authenticate(raw, server, ip="203.0.113.5", mail_from="fwd@fwd.example",
                       trusted_arc_sealers=("fwd.example",))
    assert res.arc.result is AuthStatus.TEMPERROR
    assert res.compauth.result is AuthStatus.TEMPERROR


def test_unsealed_message_has_arc_none(authenticate, server, keys):
    res = authenticate(simple_message(), server, ip="192.0.2.10")
    assert res.arc.result is AuthStatus.NONE


def test_parse_aar_and_sealer_matching():
    sealed = parse_aar("i=1; lists.example; spf=pass smtp.mailfrom=a@example.com;\r\n "
                       "dkim=pass header.d=example.com; dmarc=pass header.from=example.com")
    assert (sealed.authserv_id, sealed.dmarc, sealed.dmarc_from, sealed.spf,
            sealed.spf_domain) == ("lists.example", "pass", "example.com", "pass", "example.com")
    assert sealed.dkim == (("pass", "example.com"),)
    assert parse_aar("i=1; this is ; not ( valid").dmarc == ""
    assert sealer_trusted("arc.google.com", ["google.com"])
    assert sealer_trusted("Lists.Example.", ["lists.example"])
    assert not sealer_trusted("evilgoogle.com", ["google.com"])
