"""Composite authentication: each branch of the documented order."""

from __future__ import annotations

from mailsift.auth.compauth import REASON_ARC, REASON_SPOOF_PAIR, composite
from mailsift.auth.dmarc import DmarcEvaluator
from mailsift.core.auth import ArcResult, AuthStatus, DkimResult, DmarcResult, SpfResult

ORG = DmarcEvaluator.psl_org
P, F = AuthStatus.PASS, AuthStatus.FAIL


def dmarc(result, disposition="none", policy="reject"):
    return DmarcResult(result, "example.com", policy=policy, disposition=disposition,
                       policy_domain="example.com" if result is not AuthStatus.NONE else "")


def run(dm=None, spf=None, dkim=(), arc=None, vouches=False, pair=None, frm="example.com"):
    return composite(from_domain=frm, spf=spf, dkim=dkim, dmarc=dm, arc=arc,
                     arc_vouches=vouches, spoof_pair=pair, org=ORG)


def spf(domain, result=P):
    return SpfResult(result, "mailfrom", domain)


def test_no_from_domain_is_none():
    assert run(frm="").result is AuthStatus.NONE


def test_dmarc_pass_is_pass():
    assert run(dmarc(P)).result is P


def test_trusted_arc_rescue_is_pass():
    arc = ArcResult(P, 1, "lists.example", True, sealed_dmarc="pass")
    res = run(dmarc(F, "none"), arc=arc, vouches=True)
    assert res.result is P and res.reason.startswith(REASON_ARC)


def test_spoof_pair_is_softpass():
    res = run(dmarc(F, "reject"), pair="example.com=192.0.2.0/24")
    assert res.result is AuthStatus.SOFTPASS and res.reason.startswith(REASON_SPOOF_PAIR)


def test_dns_trouble_is_temperror_not_fail():
    assert run(dmarc(AuthStatus.TEMPERROR)).result is AuthStatus.TEMPERROR
    assert run(dmarc(F, "reject"), spf=spf("example.com", AuthStatus.TEMPERROR)).result is (
        AuthStatus.TEMPERROR)
    assert run(dmarc(F, "reject"), arc=ArcResult(AuthStatus.TEMPERROR)).result is (
        AuthStatus.TEMPERROR)


def test_dmarc_fail_with_enforcing_policy_is_fail_even_if_others_pass():
    res = run(dmarc(F, "quarantine"), spf=spf("attacker.example"))
    assert res.result is F and "quarantine" in res.reason


def test_dmarc_fail_policy_none_softpass_when_someone_authenticated():
    res = run(dmarc(F, "none", "none"), dkim=(DkimResult(P, "esp.example", "s"),))
    assert res.result is AuthStatus.SOFTPASS and "esp.example" in res.reason


def test_dmarc_fail_policy_none_and_nothing_authenticated_is_fail():
    res = run(dmarc(F, "none", "none"), spf=spf("attacker.example", AuthStatus.SOFTFAIL))
    assert res.result is F


def test_no_dmarc_record_never_fails():
    assert run(dmarc(AuthStatus.NONE)).result is AuthStatus.NONE
    implicit = run(dmarc(AuthStatus.NONE), spf=spf("bounce.example.com"))
    assert implicit.result is AuthStatus.SOFTPASS
    other = run(dmarc(AuthStatus.NONE), spf=spf("other.example"))
    assert other.result is AuthStatus.NONE
