"""DKIM (RFC 6376, RFC 8463): every signature verified and reported on its own."""

from __future__ import annotations

import pytest

from mailsift.auth.dkim_check import verify_dkim
from mailsift.core.auth import AuthStatus
from mailsift.testing.signing import dkim_sign, simple_message


@pytest.fixture
def zones(keys):
    return {
        "s1._domainkey.example.com": {"TXT": [keys["rsa"].record]},
        "ed._domainkey.example.com": {"TXT": [keys["ed"].record]},
        "esp._domainkey.esp.example": {"TXT": [keys["other"].record]},
        "revoked._domainkey.example.com": {"TXT": ["v=DKIM1; k=rsa; p="]},
        "slow._domainkey.example.com": {"behaviour": "timeout"},
        "garbage._domainkey.example.com": {"TXT": ["v=DKIM1; k=rsa; p=bm90IGEga2V5"]},
    }


@pytest.fixture
def resolver(dns, resolver_for, zones):
    return resolver_for(dns(zones))


def test_rsa_2048_signature_passes(keys, resolver):
    raw = dkim_sign(simple_message(), "example.com", "s1", keys["rsa"])
    (res,) = verify_dkim(raw, resolver)
    assert res.result is AuthStatus.PASS
    assert (res.domain, res.selector, res.algorithm, res.index) == (
        "example.com", "s1", "rsa-sha256", 0)


def test_ed25519_signature_passes(keys, resolver):
    raw = dkim_sign(simple_message(), "example.com", "ed", keys["ed"])
    (res,) = verify_dkim(raw, resolver)
    assert res.result is AuthStatus.PASS
    assert res.algorithm == "ed25519-sha256"


def test_every_signature_is_verified_not_only_the_top_one(keys, resolver):
    raw = dkim_sign(simple_message(), "example.com", "s1", keys["rsa"])
    # An ESP signature on top made with the wrong key: top fails, the one below still passes.
    raw = dkim_sign(raw, "esp.example", "esp", keys["rsa"])
    raw = dkim_sign(raw, "example.com", "ed", keys["ed"])
    results = verify_dkim(raw, resolver)
    assert [(r.index, r.domain, r.result) for r in results] == [
        (0, "example.com", AuthStatus.PASS),
        (1, "esp.example", AuthStatus.FAIL),
        (2, "example.com", AuthStatus.PASS),
    ]


def test_changed_body_fails_with_body_hash_reason(keys, resolver):
    raw = dkim_sign(simple_message(), "example.com", "s1", keys["rsa"])
    (res,) = verify_dkim(raw.replace(b"the report", b"the invoice"), resolver)
    assert res.result is AuthStatus.FAIL
    assert "body hash" in res.reason


def test_changed_subject_fails(keys, resolver):
    raw = dkim_sign(simple_message(), "example.com", "s1", keys["rsa"])
    (res,) = verify_dkim(raw.replace(b"Subject: Quarterly", b"Subject: [list] Quarterly"),
                         resolver)
    assert res.result is AuthStatus.FAIL


@pytest.mark.parametrize("selector,words", [("missing", "no key"), ("revoked", "key"),
                                            ("garbage", "key")])
def test_key_problems_are_permerror(keys, resolver, selector, words):
    raw = dkim_sign(simple_message(), "example.com", selector, keys["rsa"])
    (res,) = verify_dkim(raw, resolver)
    assert res.result is AuthStatus.PERMERROR, res.reason
    assert words in res.reason


def test_key_lookup_timeout_is_temperror(keys, resolver):
    raw = dkim_sign(simple_message(), "example.com", "slow", keys["rsa"])
    (res,) = verify_dkim(raw, resolver)
    assert res.result is AuthStatus.TEMPERROR


def test_malformed_signature_is_permerror(resolver):
    raw = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com\r\n" + simple_message()
    (res,) = verify_dkim(raw, resolver)
    assert res.result is AuthStatus.PERMERROR
    assert res.domain == "example.com"


def test_key_below_minimum_size_is_permerror(keys, resolver):
    raw = dkim_sign(simple_message(), "example.com", "s1", keys["rsa"])
    (res,) = verify_dkim(raw, resolver, minkey=4096)
    assert res.result is AuthStatus.PERMERROR


def test_unsigned_message_has_no_results(resolver):
    assert verify_dkim(simple_message(), resolver) == ()
