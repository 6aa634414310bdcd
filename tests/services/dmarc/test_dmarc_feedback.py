"""Recorded evaluations -> aggregated in SQL -> <feedback> XML that validates against the
published schemas, byte for byte equal to the golden reports."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mailsift.core.auth import ArcResult, AuthStatus
from mailsift.core.verdict import Action
from mailsift.services.dmarc.evaluations import applied_disposition, evaluation_row
from mailsift.services.dmarc.feedback import ReportMeta, policy_from_record, render_feedback
from mailsift.store import Store
from mailsift.store.dmarc import DmarcStore

DATA = Path(__file__).parent / "data"
DAY0 = 1_799_971_200  # 2027-01-15 00:00:00 UTC
RECORD = "v=DMARC1; p=reject; sp=quarantine; adkim=s; fo=1; rua=mailto:dmarc@example.com!10m"


def fixed_day(evaluation: Any) -> list[Any]:
    """One day of mail about example.com, covering every branch of the report."""
    r = RECORD
    return [
        # a passing stream, three messages from one server
        *[evaluation(record=r, msg_id=f"p{i}") for i in range(3)],
        # a passing stream from IPv6 with two signatures, one failing
        evaluation(record=r, ip="2001:db8::25", dkim=(("example.com", "s1", "pass"),
                                                       ("esp.example", "k2", "fail"))),
        # spoofing: fails, rejected as asked
        *[evaluation(record=r, passed=False, ip="203.0.113.9", spf=("spoof.example", "fail"),
                     dkim=(), mail_from="x@spoof.example", action=Action.REJECT,
                     msg_id=f"s{i}") for i in range(2)],
        # fails, local policy junked instead of rejecting ([policy] dmarc_enforcement=junk)
        evaluation(record=r, passed=False, ip="198.51.100.7", spf=("list.example", "pass"),
                   dkim=(("list.example", "l1", "pass"),), mail_from="b@list.example",
                   action=Action.JUNK),
        # fails, a trusted ARC sealer vouched: disposition none
        evaluation(record=r, passed=False, ip="198.51.100.8", spf=("fwd.example", "pass"),
                   dkim=(("example.com", "s1", "fail"),), mail_from="f@fwd.example",
                   disposition="none",
                   reason="x; policy reject overridden: trusted ARC sealer arc.example "
                   "(trusted_forwarder)",
                   arc=ArcResult(AuthStatus.PASS, 1, "arc.example", trusted=True)),
        # a subdomain without its own record (sp applies), null sender, SPF not run
        evaluation(record=r, from_domain="news.example.com", policy="quarantine",
                   passed=True, spf=None, mail_from="", ip="192.0.2.11"),
    ]


def _record(dmarc: DmarcStore, results: list[Any]) -> None:
    rows = []
    for i, res in enumerate(results):
        row = evaluation_row(res, DAY0 + 3600 + i)
        assert row is not None
        rows.append(row)
    dmarc.record_many(rows)


def _render(dmarc: DmarcStore, fmt: str) -> bytes:
    begin, end = DAY0, DAY0 + 86400
    record, discovery = dmarc.latest_record("example.com", begin, end)
    policy, errors = policy_from_record("example.com", record, discovery)
    meta = ReportMeta("Mailsift Test Receiver", "dmarc-reports@receiver.example",
                      f"{begin}.1@mx.receiver.example", begin, end - 1, errors=tuple(errors))
    return render_feedback(meta, policy, dmarc.aggregate("example.com", begin, end), fmt)


@pytest.mark.parametrize("fmt", ["rfc9990", "rfc7489"])
def test_golden_reports_validate_against_the_schema(store: Store, evaluation: Any,
                                                    xsd: dict[str, Any], fmt: str) -> None:
    dmarc = DmarcStore(store.engine, store.clock)
    _record(dmarc, fixed_day(evaluation))
    xml = _render(dmarc, fmt)
    xsd[fmt].validate(xml.decode())  # raises with the offending path when invalid
    golden = DATA / f"golden-{fmt}.xml"
    if os.environ.get("MAILSIFT_REGOLD"):  # regenerate after a deliberate change, then review
        golden.write_text(xml.decode(), encoding="utf-8")
    assert xml.decode() == golden.read_text(encoding="utf-8")


def test_aggregation_counts_and_reasons(store: Store, evaluation: Any) -> None:
    dmarc = DmarcStore(store.engine, store.clock)
    _record(dmarc, fixed_day(evaluation))
    rows = dmarc.aggregate("example.com", DAY0, DAY0 + 86400)
    by_ip = {r.source_ip: r for r in rows}
    assert by_ip["192.0.2.10"].count == 3
    assert by_ip["203.0.113.9"].count == 2
    assert by_ip["203.0.113.9"].disposition == "reject"
    assert json.loads(by_ip["198.51.100.7"].reasons) == [["local_policy",
                                                         "2-detection: junk"]]
    assert by_ip["198.51.100.7"].disposition == "quarantine"
    assert json.loads(by_ip["198.51.100.8"].reasons)[0][0] == "trusted_arc"
    assert by_ip["198.51.100.8"].disposition == "none"
    assert sum(r.count for r in rows) == 9
    # nothing outside the period, nothing of another domain
    assert dmarc.aggregate("example.com", DAY0 + 86400, DAY0 + 2 * 86400) == []
    assert dmarc.policy_domains(DAY0, DAY0 + 86400) == ["example.com"]


def test_rows_are_only_made_for_reportable_evaluations(evaluation: Any) -> None:
    from dataclasses import replace

    res = evaluation()
    assert evaluation_row(res, 0.0) is not None
    no_record = replace(res, auth=replace(res.auth, dmarc=replace(
        res.auth.dmarc, policy_domain="", result=AuthStatus.NONE)))
    assert evaluation_row(no_record, 0.0) is None
    temp = replace(res, auth=replace(res.auth, dmarc=replace(
        res.auth.dmarc, result=AuthStatus.TEMPERROR)))
    assert evaluation_row(temp, 0.0) is None
    assert evaluation_row(replace(res, auth=None), 0.0) is None


@pytest.mark.parametrize(("requested", "action", "applied"), [
    ("reject", Action.REJECT, "reject"),
    ("reject", Action.QUARANTINE, "quarantine"),
    ("reject", Action.JUNK, "quarantine"),
    ("reject", Action.DELIVER, "none"),
    ("quarantine", Action.REJECT, "quarantine"),  # rejected for something else: not DMARC's
    ("none", Action.QUARANTINE, "none"),
])
def test_applied_disposition_is_never_stronger_than_requested(
        requested: str, action: Action, applied: str) -> None:
    assert applied_disposition(requested, action) == applied


def test_override_reasons(evaluation: Any) -> None:
    sampled = evaluation(passed=False, record="v=DMARC1; p=reject; pct=10",
                         disposition="quarantine", pct=10, action=Action.QUARANTINE)
    row = evaluation_row(sampled, 0.0)
    assert row is not None and json.loads(row["reasons"]) == [["sampled_out", "pct=10"]]
    testing = evaluation(passed=False, record="v=DMARC1; p=reject; t=y",
                         disposition="quarantine", testing=True, action=Action.QUARANTINE)
    row = evaluation_row(testing, 0.0)
    assert row is not None and json.loads(row["reasons"]) == [["policy_test_mode", "t=y"]]
    pair = evaluation(passed=False, action=Action.DELIVER,
                      compauth="allowed spoof pair example.com=192.0.2.0/24")
    row = evaluation_row(pair, 0.0)
    assert row is not None
    assert json.loads(row["reasons"]) == [["forwarded",
                                           "allowed spoof pair example.com=192.0.2.0/24"]]


def test_text_is_escaped(xsd: dict[str, Any]) -> None:
    from defusedxml.ElementTree import fromstring

    from mailsift.services.dmarc.feedback import Policy
    from mailsift.store.dmarc import AggregateRow

    row = AggregateRow("192.0.2.1", "example.com", "a&b.example", "", "none", False, False,
                       json.dumps([["local_policy", "<allow> & 'quotes'"]]),
                       json.dumps({"dkim": [["example.com", "s<1>", "fail"]], "spf": None}), 2)
    xml = render_feedback(ReportMeta("Org & <Co>", "r@example.com", "1.2@x", 0, 1),
                          Policy("example.com", p="reject"), [row])
    xsd["rfc9990"].validate(xml.decode())
    root = fromstring(xml)
    ns = "{urn:ietf:params:xml:ns:dmarc-2.0}"
    assert root.find(f"{ns}report_metadata/{ns}org_name").text == "Org & <Co>"
    comment = root.find(f"{ns}record/{ns}row/{ns}policy_evaluated/{ns}reason/{ns}comment")
    assert comment.text == "<allow> & 'quotes'"
