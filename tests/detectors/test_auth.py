"""Auth detector: findings from authentication results, with evidence and the right families."""

from __future__ import annotations

import pytest

from mailsift.auth import Authenticator, make_resolver
from mailsift.config.schema import AuthSettings, DnsSettings, Settings
from mailsift.core.auth import (
    ArcResult,
    AuthResults,
    AuthStatus,
    CompAuth,
    DkimResult,
    DmarcResult,
    SpfResult,
)
from mailsift.core.context import ScanContext
from mailsift.core.envelope import Connection, Envelope
from mailsift.core.errors import ConfigError
from mailsift.core.findings import Stage
from mailsift.detectors.auth import CODES, AuthDetector, build
from mailsift.detectors.base import Detector, Services
from mailsift.parsing import parse_message
from mailsift.testing.dns import DnsServer
from mailsift.testing.signing import dkim_sign, generate_rsa_key, simple_message

MSG = parse_message(simple_message())
P, F = AuthStatus.PASS, AuthStatus.FAIL


def run(auth: AuthResults | None, detector: AuthDetector | None = None):
    ctx = ScanContext(MSG, Envelope(), auth)
    return {f.code: f for f in (detector or AuthDetector()).run(ctx)}


def spoofed(disposition: str = "reject") -> AuthResults:
    return AuthResults(
        spf=SpfResult(P, "mailfrom", "attacker.example", "x@attacker.example", "203.0.113.6"),
        dkim=(DkimResult(F, "example.com", "s1", reason="body hash did not verify"),),
        dmarc=DmarcResult(F, "example.com", policy="reject", disposition=disposition,
                          policy_domain="example.com", reason="not aligned"),
        arc=ArcResult(AuthStatus.NONE),
        compauth=CompAuth(F, "dmarc=fail for example.com, domain policy reject"),
    )


def test_contract_and_factory():
    det = build(Settings(), Services())
    assert isinstance(det, Detector)
    assert (det.name, det.stage) == ("auth", Stage.AUTH)
    assert det.codes == frozenset(CODES)
    assert "publicsuffixlist" in det.versions()


def test_spoof_yields_a_spoof_family_finding_strong_enough_for_policy():
    found = run(spoofed())
    comp = found["AUTH_COMPAUTH_FAIL"]
    assert comp.category == "spoof" and comp.weight >= 1.0
    assert "from=example.com" in comp.evidence
    assert found["AUTH_DMARC_REJECT"].category is None
    assert "p=reject" in found["AUTH_DMARC_FAIL"].evidence
    assert set(found) == {"AUTH_COMPAUTH_FAIL", "AUTH_DMARC_REJECT", "AUTH_DMARC_FAIL",
                          "AUTH_DKIM_FAIL"}


def test_quarantine_disposition_finding():
    assert "AUTH_DMARC_QUARANTINE" in run(spoofed("quarantine"))


def test_dkim_failure_alone_is_informational():
    auth = AuthResults(dkim=(DkimResult(F, "example.com", "s1", reason="headers changed"),),
                       dmarc=DmarcResult(AuthStatus.NONE, "example.com"),
                       compauth=CompAuth(AuthStatus.NONE, "no policy"))
    found = run(auth)
    assert set(found) == {"AUTH_DKIM_FAIL"}
    assert found["AUTH_DKIM_FAIL"].category is None and found["AUTH_DKIM_FAIL"].weight == 0
    assert "d=example.com s=s1: headers changed" in found["AUTH_DKIM_FAIL"].evidence


def test_spf_fail_and_softfail_are_small_spam_signals():
    for status, code in ((F, "AUTH_SPF_FAIL"), (AuthStatus.SOFTFAIL, "AUTH_SPF_SOFTFAIL")):
        found = run(AuthResults(spf=SpfResult(status, "mailfrom", "x.example", "a@x.example",
                                              "192.0.2.1", "matched -all")))
        assert found[code].category == "spam" and 0 < found[code].weight < 1
        assert "ip=192.0.2.1" in found[code].evidence
    helo = run(AuthResults(spf_helo=SpfResult(F, "helo", "h.example", "", "192.0.2.1")))
    assert "AUTH_HELO_FAIL" in helo


def test_temperror_and_permerror_are_reported_not_failed():
    auth = AuthResults(
        spf=SpfResult(AuthStatus.TEMPERROR, "mailfrom", "slow.example", reason="timeout"),
        dkim=(DkimResult(AuthStatus.PERMERROR, "example.com", "gone", reason="no key"),),
        dmarc=DmarcResult(AuthStatus.TEMPERROR, "example.com", reason="DNS: timeout"),
        compauth=CompAuth(AuthStatus.TEMPERROR, "temporary DNS error"),
    )
    found = run(auth)
    assert set(found) == {"AUTH_TEMPERROR", "AUTH_PERMERROR"}
    assert all(f.category is None for f in found.values())
    assert any("slow.example" in e for e in found["AUTH_TEMPERROR"].evidence)


def test_trusted_arc_rescue_and_spoof_pair_are_visible():
    rescued = AuthResults(
        dmarc=DmarcResult(F, "example.com", policy="reject", disposition="none"),
        arc=ArcResult(P, 1, "lists.example", True, sealed_auth_results="lists.example; dmarc=pass"),
        compauth=CompAuth(P, "trusted ARC sealer lists.example vouched (dmarc=pass)"),
    )
    found = run(rescued)
    assert "AUTH_ARC_TRUSTED" in found and "AUTH_COMPAUTH_FAIL" not in found
    assert "AUTH_DMARC_REJECT" not in found
    pair = run(AuthResults(compauth=CompAuth(AuthStatus.SOFTPASS,
                                             "allowed spoof pair example.com=*")))
    assert set(pair) == {"AUTH_SPOOF_ALLOWED"}
    broken = run(AuthResults(arc=ArcResult(F, 1, "lists.example", reason="AMS did not verify")))
    assert "AUTH_ARC_FAIL" in broken


def test_offline_is_informational():
    found = run(AuthResults(offline=True, notes=("offline: DNS checks skipped",)))
    assert set(found) == {"AUTH_OFFLINE"} and found["AUTH_OFFLINE"].category is None
    assert run(None)["AUTH_OFFLINE"].evidence == ("authentication did not run",)


def test_weights_come_from_config_and_typos_fail():
    det = build(Settings(auth=AuthSettings(weights={"AUTH_SPF_FAIL": 2.0})), Services())
    auth = AuthResults(spf=SpfResult(F, "mailfrom", "x.example"))
    assert run(auth, det)["AUTH_SPF_FAIL"].weight == 2.0
    with pytest.raises(ConfigError):
        AuthDetector({"AUTH_SPF_FIAL": 1.0})


def test_end_to_end_with_the_local_dns_server():
    key = generate_rsa_key()
    zones = {"example.com": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]},
             "_dmarc.example.com": {"TXT": ["v=DMARC1; p=quarantine"]},
             "s1._domainkey.example.com": {"TXT": [key.record]}}
    raw = dkim_sign(simple_message(), "example.com", "s1", key)
    with DnsServer(zones) as srv:
        auth = Authenticator(AuthSettings(),
                             make_resolver(DnsSettings(timeout=0.3, lifetime=0.5), srv.address))
        env = Envelope("x@attacker.example", connection=Connection("203.0.113.5", helo="a.b"))
        spoof = auth.authenticate(parse_message(raw.replace(b"report", b"invoice")), env)
        real = auth.authenticate(parse_message(raw), env)
    assert {"AUTH_COMPAUTH_FAIL", "AUTH_DMARC_QUARANTINE"} <= set(run(spoof))
    assert "AUTH_COMPAUTH_FAIL" not in run(real)  # DKIM aligned: DMARC pass
