"""Impersonation detector: protected users, lookalike sender domains, brand display names and
the first-contact weight, with the exemptions that keep colleagues and brands themselves clean."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mailsift.config.schema import Settings
from mailsift.core.auth import AuthResults, AuthStatus, DmarcResult
from mailsift.core.context import ScanContext
from mailsift.core.envelope import Envelope
from mailsift.core.findings import Finding, Stage
from mailsift.detectors.base import Detector, Services
from mailsift.detectors.impersonation import CODES, ImpersonationDetector, build
from mailsift.history import MemoryHistory
from mailsift.parsing import parse_message
from mailsift.testing.messages import make_message

SETTINGS = {"protected_users": {"Jane Doe": ["jane.doe@example.org", "jane@doe-family.net"]},
            "own_domains": ["example.org"], "partner_domains": ["supplier.com"]}


def _det(history: MemoryHistory | None = None, min_learned: int = 1000) -> ImpersonationDetector:
    settings = Settings(impersonation=SETTINGS, history={"min_learned": min_learned})
    hist = history if history is not None else MemoryHistory()
    return build(settings, Services(history=hist))


def _run(from_: str, *, reply_to: str = "", auth: AuthResults | None = None,
         det: ImpersonationDetector | None = None) -> list[Finding]:
    headers = {"Reply-To": reply_to} if reply_to else {}
    raw = make_message(from_=from_, to="bob@example.org", headers=headers)
    ctx = ScanContext(parse_message(raw), Envelope(rcpt_to=("bob@example.org",)), auth, True,
                      0.0)
    return list((det or _det()).run(ctx))


def _codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


def _dmarc(result: AuthStatus) -> AuthResults:
    return AuthResults(dmarc=DmarcResult(result=result, from_domain="example.org"))


def test_contract() -> None:
    det = _det()
    assert isinstance(det, Detector)
    assert det.stage is Stage.REPUTATION and det.codes == frozenset(CODES)
    assert all(c.startswith("IMP_") for c in CODES)


@pytest.mark.parametrize("display", ["Jane Doe", "Doe, Jane", "JANE DOE (CEO)", "Jаne Doe"])
def test_protected_user_from_outside(display: str) -> None:
    found = _run(f'"{display}" <ceo.office@gmail.com>')
    f = next(f for f in found if f.code == "IMP_USER_DISPLAY_NAME")
    assert f.category == "impersonation_user" and f.weight == 3.0
    assert "gmail.com" in f.evidence[0] and "Jane Doe" in f.evidence[0]


def test_protected_user_own_addresses_and_colleagues_are_fine() -> None:
    assert _run("Jane Doe <jane@doe-family.net>") == []
    assert _run("Jane Doe <jane.doe@example.org>", auth=_dmarc(AuthStatus.PASS)) == []
    # a namesake colleague on our own authenticated domain is not an impersonator
    assert _run("Jane Doe <jdoe2@example.org>", auth=_dmarc(AuthStatus.PASS)) == []
    # but an unauthenticated one is (the spoof check will say more)
    assert "IMP_USER_DISPLAY_NAME" in _codes(_run("Jane Doe <jdoe2@example.org>",
                                                  auth=_dmarc(AuthStatus.FAIL)))
    assert _run("Jane Smith <jane@gmail.com>") == []  # one shared word is not the name


def test_lookalike_sender_and_reply_to_domains() -> None:
    f = next(f for f in _run("Accounts <billing@suppiier.com>")
             if f.code == "IMP_DOMAIN_LOOKALIKE")
    assert "supplier.com" in f.evidence[0] and f.category == "impersonation_domain"
    assert "IMP_DOMAIN_LOOKALIKE" in _codes(_run("IT <it@example.co>"))
    found = _run("Bob <bob@partner.test>", reply_to="bob@exarnple.org")
    assert "IMP_REPLY_TO_LOOKALIKE" in _codes(found)


def test_brand_display_name() -> None:
    f = next(f for f in _run("PayPal Service Team <support@secure-mail.test>")
             if f.code == "IMP_BRAND_DISPLAY_NAME")
    assert "paypal.com" in f.evidence[0] and f.weight == 2.0
    assert _run("PayPal <service@paypal.com>") == []
    assert _run("Amazon.de <versandbestaetigung@amazon.de>") == []
    assert _run("Chase Miller <chase@gmail.com>") == []  # a first name, not the bank


def test_first_contact_adds_weight_only_to_impersonation() -> None:
    hist = MemoryHistory()
    det = _det(hist, min_learned=1)
    hist.record("someone@else.test", "else.test", ["x@example.org"], 1.0)
    found = _run('"Jane Doe" <jane.d@gmail.com>', det=det)
    f = next(f for f in found if f.code == "IMP_FIRST_CONTACT")
    assert f.category == "impersonation_user" and f.weight == 1.0
    assert _run("Friend <friend@gmail.com>", det=det) == []
    hist.record("jane.d@gmail.com", "gmail.com", ["bob@example.org"], 2.0)
    assert "IMP_FIRST_CONTACT" not in _codes(_run('"Jane Doe" <jane.d@gmail.com>', det=det))


def test_settings_reject_one_word_names() -> None:
    with pytest.raises(ValidationError):
        Settings(impersonation={"protected_users": {"Jane": ["jane@example.org"]}})
