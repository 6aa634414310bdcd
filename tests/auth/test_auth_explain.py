"""``describe``: sentences for mail admins, and the package's public API."""

from __future__ import annotations

import mailsift.auth as auth_pkg
from mailsift.auth import describe, render_received_spf
from mailsift.core.auth import (
    ArcResult,
    AuthResults,
    AuthStatus,
    CompAuth,
    DkimResult,
    DmarcResult,
    SpfResult,
)


def test_public_api_is_exported():
    for name in auth_pkg.__all__:
        assert hasattr(auth_pkg, name), name
    assert {"Authenticator", "make_resolver", "describe", "strip_forged_results",
            "envelope_from_relays"} <= set(auth_pkg.__all__)


def test_describe_explains_each_check_and_ends_with_the_judgement():
    auth = AuthResults(
        spf=SpfResult(AuthStatus.SOFTFAIL, "mailfrom", "lists.example", "b@lists.example",
                      "198.51.100.7", "matched ~all"),
        dkim=(DkimResult(AuthStatus.FAIL, "example.com", "s1", 0, "rsa-sha256",
                         "signature did not verify"),),
        dmarc=DmarcResult(AuthStatus.FAIL, "example.com", policy="reject", disposition="none",
                          org_domain="example.com", policy_domain="example.com", pct=50,
                          testing=True, reason="not aligned"),
        arc=ArcResult(AuthStatus.PASS, 2, "lists.example", True, sealed_dmarc="pass"),
        compauth=CompAuth(AuthStatus.PASS, "trusted ARC sealer lists.example vouched"),
        notes=("several From domains",),
    )
    lines = describe(auth)
    text = "\n".join(lines)
    assert "SPF for MAIL FROM <b@lists.example> from 198.51.100.7: softfail" in text
    assert "DKIM signature 1 d=example.com s=s1 (rsa-sha256): FAIL" in text
    assert "published policy reject, testing (t=y), pct=50; disposition for this message: none" \
        in text
    assert "last sealer lists.example, trusted" in text and "dmarc=pass" in text
    assert "note: several From domains" in text
    assert lines[-1].startswith("Composite authentication: pass - From domain authenticated")


def test_describe_temperror_is_not_called_a_failure():
    auth = AuthResults(dmarc=DmarcResult(AuthStatus.TEMPERROR, "example.com", reason="timeout"),
                       compauth=CompAuth(AuthStatus.TEMPERROR, "DNS"))
    text = "\n".join(describe(auth))
    assert "temperror (DNS trouble" in text and "FAIL" not in text
    assert "no DKIM signature" in text


def test_received_spf_keeps_the_rfc7208_fields():
    spf = SpfResult(AuthStatus.SOFTFAIL, "mailfrom", "example.com", "alice@example.com",
                    "192.0.2.10", "matched ~all (soft)")
    value = render_received_spf(spf, "mx.ours.example", helo="mail.example.com")
    assert value.startswith("softfail (mx.ours.example: matched ~all [soft]) ")
    assert 'envelope-from="alice@example.com";' in value
    assert "client-ip=192.0.2.10;" in value and "helo=mail.example.com;" in value
    assert value.endswith("identity=mailfrom;")
