"""Quarantine access rules, show/delete, list validation, holds and purge via services."""

from __future__ import annotations

import pytest

from mailsift.core.errors import InputError, StoreError
from mailsift.core.verdict import Action
from mailsift.services.access import AccessDenied, NotFound, Principal
from mailsift.services.store_services import StoreServices
from mailsift.store import Store, TraceQuery
from mailsift.testing.messages import make_message
from mailsift.testing.storekit import FakeClock, make_result

ADMIN = Principal("alice", "admin")
ANALYST = Principal("sam", "analyst")
BOB = Principal("bob", "recipient", "bob@corp.example")
EVE = Principal("eve", "recipient", "eve@corp.example")


def _seed(store: Store) -> None:
    raw = make_message(html='<p>Invoice <a href="http://evil.example/">pay</a></p>'
                            "<script>steal()</script>", subject="Invoice")
    store.trace.record(make_result("q1", raw, recipients={
        "bob@corp.example": Action.QUARANTINE, "carol@corp.example": Action.QUARANTINE,
        "dan@corp.example": Action.DELIVER}), raw)


def test_show_has_explanation_headers_and_safe_preview(store: Store) -> None:
    _seed(store)
    svc = StoreServices.build(store)
    view = svc.quarantine.show(ANALYST, "q1")
    assert view.record.explanation and view.record.findings == ()
    assert ("Subject", "Invoice") in view.headers
    assert "steal" not in view.preview_html and "&lt;http://evil.example/&gt;" in view.preview_html
    assert "Hello there" in view.text


def test_recipient_is_confined_to_own_copies(store: Store) -> None:
    _seed(store)
    svc = StoreServices.build(store)
    page = svc.quarantine.search(BOB)
    assert [i.recipient for i in page.items] == ["bob@corp.example"]
    assert svc.quarantine.record(BOB, "q1").rcpt_to == ("bob@corp.example",)
    with pytest.raises(NotFound):
        svc.quarantine.show(EVE, "q1")
    assert svc.quarantine.search(EVE).items == ()
    with pytest.raises(AccessDenied):
        svc.trace.search(BOB, TraceQuery())
    with pytest.raises(AccessDenied):
        svc.quarantine.delete(ANALYST, "q1")
    with pytest.raises(NotFound):
        svc.quarantine.request_release(BOB, "q1x")
    # a recipient principal without a mailbox sees nothing, and is told so
    nobody = Principal("token", "recipient")
    for call in (lambda: svc.quarantine.search(nobody), lambda: svc.quarantine.requests(nobody),
                 lambda: svc.reports.list(nobody)):
        with pytest.raises(AccessDenied, match="has no mailbox"):
            call()


def test_delete_keeps_trace_and_audit(store: Store) -> None:
    _seed(store)
    svc = StoreServices.build(store)
    assert svc.quarantine.delete(ADMIN, "q1", reason="malware confirmed") == 2
    rec = store.trace.get("q1")
    assert rec is not None and not rec.raw_available
    assert {r.recipient: r.status for r in rec.recipients} == {
        "bob@corp.example": "deleted", "carol@corp.example": "deleted",
        "dan@corp.example": "accepted"}
    with pytest.raises(StoreError):
        svc.quarantine.download(ADMIN, "q1")
    (entry,) = svc.audit.entries(ADMIN, action="quarantine.delete")
    assert entry.detail["reason"] == "malware confirmed" and entry.actor == "alice"
    with pytest.raises(AccessDenied):
        svc.audit.entries(ANALYST)


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("sender", "<Boss@Corp.EXAMPLE>", "Boss@corp.example".lower()),
        ("domain", "@Münich.example.", "xn--mnich-kva.example"),
        ("ip", "192.0.2.7/24", "192.0.2.0/24"),
        ("ip", "2001:db8::1", "2001:db8::1"),
        ("url", "https://Evil.EXAMPLE/login?x=1", "https://evil.example/login?x=1"),
        ("hash", "A" * 64, "a" * 64),
        ("spoof_pair", "Corp.example|192.0.2.1", "corp.example|192.0.2.1"),
        ("spoof_pair", "corp.example|mail.partner.example", "corp.example|mail.partner.example"),
    ],
)
def test_list_values_are_normalised(store: Store, kind: str, value: str, expected: str) -> None:
    svc = StoreServices.build(store)
    assert svc.lists.add(ADMIN, kind, value, "block").value == expected


@pytest.mark.parametrize(
    ("kind", "value", "kw"),
    [
        ("sender", "not-an-address", {}),
        ("domain", "bad domain", {}),
        ("ip", "300.1.1.1", {}),
        ("hash", "abc", {}),
        ("spoof_pair", "corp.example", {}),
        ("url", "ftp://x.example", {}),
        ("colour", "red", {}),
        ("domain", "x.example", {"scope": "incident"}),  # must expire
        ("domain", "x.example", {"scope": "user:bob@corp.example", "action": "allow",
                                 "expires_at": 1.0}),  # in the past
        ("ip", "192.0.2.1", {"scope": "user:bob@corp.example"}),
        ("domain", "x.example", {"scope": "team"}),
    ],
)
def test_invalid_list_entries_are_refused(store: Store, kind: str, value: str,
                                          kw: dict[str, object]) -> None:
    svc = StoreServices.build(store)
    action = str(kw.pop("action", "allow"))
    with pytest.raises(InputError):
        svc.lists.add(ADMIN, kind, value, action, **kw)  # type: ignore[arg-type]


def test_lists_permissions_audit_and_snapshot(store: Store, clock: FakeClock) -> None:
    svc = StoreServices.build(store)
    with pytest.raises(AccessDenied):
        svc.lists.add(ANALYST, "domain", "x.example", "block")
    e = svc.lists.add(ADMIN, "domain", "partner.example", "allow", scope="incident",
                      expires_at=clock.now() + 3600, note="FP storm")
    assert e.author == "alice"
    snap = svc.lists.snapshot()
    assert snap.entries == (e,) and snap.version != "empty"
    assert [x.entry_id for x in svc.lists.entries(ANALYST)] == [e.entry_id]
    svc.lists.remove(ADMIN, e.entry_id)
    with pytest.raises(NotFound):
        svc.lists.remove(ADMIN, e.entry_id)
    assert [a.action for a in svc.audit.entries(ADMIN)] == ["lists.remove", "lists.add"]


def test_purge_service_uses_retention_setting_and_hold(store: Store, clock: FakeClock) -> None:
    svc = StoreServices.build(store)
    raw = make_message()
    old = clock.now() - (store.settings.retention_days + 1) * 86400
    store.trace.record(make_result("o1", raw), raw, received_at=old)
    store.trace.record(make_result("o2", raw), raw, received_at=old)
    hold = svc.retention.place_hold(ADMIN, "INC-9", TraceQuery(message="o2"), reason="legal")
    report = svc.retention.purge(ADMIN)
    assert (report.messages, report.held) == (1, 1)
    svc.retention.release_hold(ADMIN, hold.id)
    assert svc.retention.purge(ADMIN).messages == 1
    with pytest.raises(AccessDenied):
        svc.retention.purge(ANALYST)
