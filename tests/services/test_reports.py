"""User reports through ``ReportService``: who may report what, idempotence, the audit trail,
and triage (confirm/reject, release only when asked, list entries only when asked and allowed).
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io

import pytest

from mailsift.core.errors import InputError
from mailsift.core.findings import Finding
from mailsift.core.verdict import Action
from mailsift.parsing.sources import iter_mbox
from mailsift.services.access import AccessDenied, NotFound, Principal
from mailsift.services.store_services import StoreServices
from mailsift.store import Store
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink
from mailsift.testing.storekit import FakeClock, make_result

ADMIN = Principal("alice", "admin")
ANALYST = Principal("sam", "analyst")
ANN = Principal("ann", "recipient", "ann@corp.example")
EVE = Principal("eve", "recipient", "eve@corp.example")
LURE = Finding("INVOICE_LURE", 7.0, ("invoice",), "rules", "phish", artifact="rules:site",
               version="1")


def _services(store: Store, sink: SmtpSink) -> StoreServices:
    settings = store.settings.model_copy(update={"release_port": sink.port,
                                                 "release_host": sink.host})
    object.__setattr__(store, "settings", settings)
    return StoreServices.build(store)


def _seed(store: Store) -> None:
    """An invoice quarantined for ann (a false positive) and delivered to dan; a phish
    delivered to ann (a miss; its original is not kept, as with keep_raw = "quarantine")."""
    raw = make_message(subject="Invoice 1001", from_="Acme <billing@acme.example>",
                       message_id="<inv@acme.example>")
    store.trace.record(make_result(
        "inv", raw, recipients={"ann@corp.example": Action.QUARANTINE,
                                "dan@corp.example": Action.DELIVER},
        findings=[LURE], subject="Invoice 1001", from_addr="billing@acme.example",
        mail_from="bounce@mailer.acme.example"), raw)
    raw = make_message(subject="Verify your account", message_id="<ph@x.example>")
    store.trace.record(make_result("ph", raw, recipients={"ann@corp.example": Action.DELIVER},
                                   subject="Verify your account",
                                   from_addr="security@paypa1.example"), raw)


def _actions(svc: StoreServices) -> list[str]:
    return [e.action for e in reversed(svc.audit.entries(ADMIN))]


def test_a_recipient_reports_only_its_own_copies(store: Store, sink: SmtpSink) -> None:
    _seed(store)
    svc = _services(store, sink)
    info, created = svc.reports.create(ANN, "inv", "ham", comment="  my supplier  ")
    assert created and info.mailbox == "ann@corp.example" and info.reporter == "ann"
    # the verdict at scan time is ann's copy's, with the rule that decided
    assert (info.category, info.action, info.reasons) == ("phish", "quarantine",
                                                          ("INVOICE_LURE",))
    assert (info.subject, info.sender, info.comment) == ("Invoice 1001", "billing@acme.example",
                                                         "my supplier")
    with pytest.raises(NotFound):  # not hers: the same answer as a message that does not exist
        svc.reports.create(EVE, "inv", "phish")
    with pytest.raises(NotFound):
        svc.reports.create(EVE, "nope", "phish")
    phish, _ = svc.reports.create(ANN, "ph", "phish")
    assert (phish.category, phish.action) == ("clean", "deliver")
    # a recipient reads its own reports only, and no triage
    assert {r.id for r in svc.reports.list(ANN).items} == {info.id, phish.id}
    assert svc.reports.list(EVE).items == ()
    with pytest.raises(NotFound):
        svc.reports.get(EVE, info.id)
    with pytest.raises(AccessDenied):
        asyncio.run(svc.reports.triage(ANN, info.id, "confirmed"))
    with pytest.raises(AccessDenied):
        svc.reports.count(ANN)
    with pytest.raises(InputError, match="invalid label"):
        svc.reports.create(ANN, "inv", "clean")
    with pytest.raises(InputError, match="longer than"):
        svc.reports.create(ANN, "inv", "spam", comment="x" * 2001)


def test_reporting_twice_is_idempotent_and_audited_once(store: Store, sink: SmtpSink) -> None:
    _seed(store)
    svc = _services(store, sink)
    first, created = svc.reports.create(ANN, "inv", "ham")
    again, created_again = svc.reports.create(ANN, "inv", "not-junk", comment="again")
    assert created and not created_again and again == first
    assert store.reports.count() == 1
    (entry,) = svc.audit.entries(ADMIN, action="report.create")
    assert (entry.actor, entry.target) == ("ann", "inv")
    assert entry.detail == {"report": first.id, "label": "ham", "mailbox": "ann@corp.example",
                            "verdict": "phish/quarantine"}
    # an analyst's own report of the same message is another report
    mine, created = svc.reports.create(ANALYST, "inv", "ham", recipient="Dan@corp.example")
    assert created and mine.mailbox == "dan@corp.example" and mine.action == "deliver"
    whole, _ = svc.reports.create(ADMIN, "inv", "ham")
    assert whole.mailbox is None and whole.action == "quarantine"  # the message's strictest
    with pytest.raises(InputError, match="not a recipient"):
        svc.reports.create(ADMIN, "inv", "spam", recipient="zed@corp.example")
    # a recipient follows the reports about its mailbox, whoever filed them
    assert [r.id for r in svc.reports.list(ANN).items] == [first.id]
    dan = Principal("token:dan<dan@corp.example>", "recipient", "dan@corp.example")
    assert [r.id for r in svc.reports.list(dan).items] == [mine.id]
    assert svc.reports.get(dan, mine.id) == mine
    # a report filed for the whole message releases every quarantined copy (only ann's here)
    done = asyncio.run(svc.reports.triage(ADMIN, whole.id, "confirmed", release=True))
    assert done.release is not None and done.release.sent == ["ann@corp.example"]
    assert sink.wait_for(1) and len(sink) == 1


def test_confirming_not_junk_releases_only_when_asked(store: Store, sink: SmtpSink,
                                                     clock: FakeClock) -> None:
    _seed(store)
    svc = _services(store, sink)
    info, _ = svc.reports.create(ANN, "inv", "ham")
    done = asyncio.run(svc.reports.triage(ANALYST, info.id, "confirmed", note="known supplier"))
    assert (done.previous, done.report.state, done.report.triaged_by) == ("new", "confirmed",
                                                                          "sam")
    assert done.release is None and done.entry is None and len(sink) == 0
    assert store.trace.statuses("inv")["ann@corp.example"] == "quarantined"  # nothing moved

    done = asyncio.run(svc.reports.triage(ANALYST, info.id, "confirmed", release=True))
    assert done.previous == "confirmed" and done.release is not None
    assert done.release.sent == ["ann@corp.example"] and sink.wait_for(1)
    assert sink.copies() == {("<inv@acme.example>", "ann@corp.example"): 1}
    # the existing release path: ledger, trace status, its own audit entry; never twice
    assert store.trace.statuses("inv")["ann@corp.example"] == "released"
    again = asyncio.run(svc.reports.triage(ADMIN, info.id, "confirmed", release=True))
    assert again.release is not None and again.release.already == ["ann@corp.example"]
    assert len(sink) == 1
    assert _actions(svc) == ["report.create", "report.triage", "report.triage",
                             "quarantine.release", "report.triage", "quarantine.release"]
    triage = svc.audit.entries(ADMIN, action="report.triage")[0]
    assert triage.detail["release"] is True and triage.detail["from"] == "confirmed"


def test_list_entries_only_when_asked_and_allowed(store: Store, sink: SmtpSink,
                                                 clock: FakeClock) -> None:
    _seed(store)
    svc = _services(store, sink)
    ham, _ = svc.reports.create(ANN, "inv", "ham")
    phish, _ = svc.reports.create(ANN, "ph", "phish")
    # an analyst may triage but not list: refused before anything changes
    with pytest.raises(AccessDenied):
        asyncio.run(svc.reports.triage(ANALYST, ham.id, "confirmed", list_entry="sender"))
    assert store.reports.get(ham.id).state == "new"  # type: ignore[union-attr]
    with pytest.raises(InputError, match="only a confirmed"):
        asyncio.run(svc.reports.triage(ADMIN, ham.id, "rejected", list_entry="sender"))
    with pytest.raises(InputError, match="only not-junk"):
        asyncio.run(svc.reports.triage(ADMIN, phish.id, "confirmed", release=True))
    dans, _ = svc.reports.create(ADMIN, "inv", "ham", recipient="dan@corp.example")
    with pytest.raises(InputError, match=r"no quarantined copy for dan@corp\.example"):
        asyncio.run(svc.reports.triage(ADMIN, dans.id, "confirmed", release=True))
    assert store.reports.get(ham.id).state == "new"  # type: ignore[union-attr]
    assert svc.lists.entries(ADMIN) == []

    expires = clock.now() + 30 * 86400
    done = asyncio.run(svc.reports.triage(ADMIN, ham.id, "confirmed", list_entry="sender",
                                          expires_at=expires))
    assert done.entry is not None and not done.entry_existed
    # the From address policy matches allows against, not the envelope sender
    assert (done.entry.kind, done.entry.value, done.entry.action, done.entry.scope,
            done.entry.expires_at) == ("sender", "billing@acme.example", "allow", "admin",
                                       expires)
    again = asyncio.run(svc.reports.triage(ADMIN, ham.id, "confirmed", list_entry="sender"))
    assert again.entry_existed and again.entry == done.entry
    blocked = asyncio.run(svc.reports.triage(ADMIN, phish.id, "confirmed",
                                             list_entry="domain", note="campaign"))
    assert blocked.entry is not None
    assert (blocked.entry.kind, blocked.entry.value, blocked.entry.action) == (
        "domain", "paypa1.example", "block")
    assert [(e.action, e.value) for e in svc.lists.entries(ADMIN)] == [
        ("block", "paypa1.example"), ("allow", "billing@acme.example")]
    assert _actions(svc).count("lists.add") == 2
    rejected = asyncio.run(svc.reports.triage(ANALYST, phish.id, "rejected", note="newsletter"))
    assert rejected.previous == "confirmed" and rejected.report.note == "newsletter"


def test_export_writes_originals_and_counts_the_missing(store: Store, sink: SmtpSink) -> None:
    _seed(store)
    svc = _services(store, sink)
    for message, label in (("inv", "ham"), ("ph", "phish")):
        info, _ = svc.reports.create(ANN, message, label)
        asyncio.run(svc.reports.triage(ANALYST, info.id, "confirmed"))
    out = io.BytesIO()
    summary = svc.reports.export(ANALYST, out, label="ham")
    assert (summary.written, summary.missing) == (1, 0)
    (raw,) = list(iter_mbox(io.BytesIO(out.getvalue())))
    assert raw == store.trace.raw("inv")
    # the delivered phish kept no original (keep_raw = "quarantine"): skipped and counted
    out = io.BytesIO()
    summary = svc.reports.export(ANALYST, out, label="phish")
    assert (summary.written, summary.missing, summary.missing_ids) == (0, 1, ("ph",))
    assert out.getvalue() == b""
    assert svc.reports.export(ANALYST, io.BytesIO(), label="ham", state="new").written == 0
    with pytest.raises(AccessDenied):
        svc.reports.export(ANN, io.BytesIO(), label="ham")
    assert [e.detail["written"] for e in svc.audit.entries(ADMIN, action="report.export")] \
        == [0, 0, 1]


def test_triage_refuses_a_wide_domain_entry_before_recording(store: Store,
                                                             sink: SmtpSink) -> None:
    raw = make_message(subject="Hi", from_="Pat <pat@gmail.com>", message_id="<g@gmail.com>")
    store.trace.record(make_result("gm", raw, recipients={"ann@corp.example": Action.DELIVER},
                                   subject="Hi", from_addr="pat@gmail.com"), raw)
    svc = _services(store, sink)
    report, _ = svc.reports.create(ANN, "gm", "phish")
    with pytest.raises(InputError, match=r"domain gmail\.com is wide: .*every sender at gmail"):
        asyncio.run(svc.reports.triage(ADMIN, report.id, "confirmed", list_entry="domain"))
    assert store.reports.get(report.id).state == "new"  # type: ignore[union-attr]
    assert svc.lists.entries(ADMIN) == []
    done = asyncio.run(svc.reports.triage(ADMIN, report.id, "confirmed", list_entry="sender"))
    assert done.entry is not None and done.entry.value == "pat@gmail.com"
