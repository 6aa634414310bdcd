"""Fixed DMARC evaluations (the results the gateway's observers see) and schema validators."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mailsift.core.auth import (
    ArcResult,
    AuthResults,
    AuthStatus,
    CompAuth,
    DkimResult,
    DmarcResult,
    SpfResult,
)
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Action, Category
from mailsift.testing.storekit import make_result

DATA = Path(__file__).parent / "data"
T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
DAY0 = 1_799_971_200  # 2027-01-15 00:00:00 UTC


def evaluation(
    *,
    from_domain: str = "example.com",
    policy_domain: str = "example.com",
    record: str = "v=DMARC1; p=reject; rua=mailto:dmarc@example.com",
    policy: str = "reject",
    passed: bool = True,
    spf: tuple[str, str] | None = ("example.com", "pass"),
    dkim: tuple[tuple[str, str, str], ...] = (("example.com", "s1", "pass"),),
    spf_aligned: bool | None = None,
    dkim_aligned: bool | None = None,
    disposition: str | None = None,
    action: Action = Action.DELIVER,
    ip: str = "192.0.2.10",
    mail_from: str = "bounce@example.com",
    rcpt: str = "user@rcpt.example",
    reason: str = "",
    pct: int = 100,
    testing: bool = False,
    arc: ArcResult | None = None,
    compauth: str = "",
    msg_id: str = "m1",
) -> ScanResult:
    """A scan result carrying a fixed DMARC evaluation."""
    spf_res = SpfResult(AuthStatus(spf[1]), "mailfrom", spf[0], client_ip=ip) if spf else None
    dkim_res = tuple(DkimResult(AuthStatus(r), d, s, index=i)
                     for i, (d, s, r) in enumerate(dkim))
    if spf_aligned is None:
        spf_aligned = passed and spf is not None and spf[1] == "pass"
    if dkim_aligned is None:
        dkim_aligned = passed and any(r == "pass" for _, _, r in dkim)
    aligned_d = next((d for d, _, r in dkim if r == "pass"), "") if dkim_aligned else ""
    dmarc = DmarcResult(
        AuthStatus.PASS if passed else AuthStatus.FAIL, from_domain, policy=policy,
        disposition=(disposition if disposition is not None
                     else ("none" if passed else policy)),
        org_domain=policy_domain, policy_domain=policy_domain, spf_aligned=spf_aligned,
        dkim_aligned=dkim_aligned, aligned_dkim_domain=aligned_d, record=record, pct=pct,
        testing=testing, reason=reason)
    auth = AuthResults(spf=spf_res, dkim=dkim_res, dmarc=dmarc, arc=arc,
                       compauth=CompAuth(AuthStatus.PASS if passed else AuthStatus.FAIL,
                                         compauth))
    category = Category.CLEAN if action is Action.DELIVER else Category.SPOOF
    base = make_result(msg_id, b"Subject: x\r\n\r\nbody\r\n", mail_from=mail_from,
                       recipients={rcpt: action}, category=category,
                       from_addr=f"alice@{from_domain}", client_ip=ip)
    return replace(base, auth=auth)


@pytest.fixture(scope="session")
def xsd() -> dict[str, Any]:
    import xmlschema

    return {"rfc9990": xmlschema.XMLSchema(str(DATA / "rfc9990.xsd")),
            "rfc7489": xmlschema.XMLSchema(str(DATA / "rfc7489.xsd"))}


@pytest.fixture(name="evaluation")
def evaluation_fixture() -> Any:
    """``evaluation(**fields)``: a scan result carrying a fixed DMARC evaluation."""
    return evaluation
