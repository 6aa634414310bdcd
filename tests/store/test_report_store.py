"""User report rows on SQLite and PostgreSQL: one per (message, reporter, label), listing with
filters and keyset pages, triage, and reports that outlive their message."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from mailsift.core.errors import StoreError
from mailsift.core.verdict import Action
from mailsift.store import Store
from mailsift.testing.messages import make_message
from mailsift.testing.storekit import FakeClock, make_result


def _report(store: Store, message: str = "m1", reporter: str = "ann", label: str = "ham",
            **extra: Any) -> Any:
    values: dict[str, Any] = {"category": "phish", "action": "quarantine",
                              "reasons": ["INVOICE_LURE"], "subject": "Invoice 1",
                              "sender": "billing@acme.example", "received_at": 1.0}
    values.update(extra)
    return store.reports.add(message=message, reporter=reporter, label=label, **values)


def test_a_report_is_stored_once_per_message_reporter_and_label(store: Store,
                                                                clock: FakeClock) -> None:
    first, created = _report(store, mailbox="Ann@Example.NET", comment="my invoice")
    assert created and first.state == "new" and first.mailbox == "ann@example.net"
    assert (first.category, first.action, first.reasons) == ("phish", "quarantine",
                                                             ("INVOICE_LURE",))
    clock.advance(5)
    again, created = _report(store, comment="clicked twice")
    assert not created and again == first  # the first report, unchanged
    other, created = _report(store, label="spam")
    assert created and other.id != first.id
    assert store.reports.count() == 2
    with pytest.raises(StoreError, match="invalid label"):
        _report(store, label="clean")


def test_racing_reports_leave_one_row(store: Store) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _report(store), range(8)))
    assert sum(created for _, created in results) == 1
    assert len({info.id for info, _ in results}) == 1


def test_list_filters_and_pages(store: Store, clock: FakeClock) -> None:
    for i in range(7):
        clock.advance(10)
        _report(store, message=f"m{i}", label=("ham", "phish", "spam")[i % 3])
    page = store.reports.list(limit=3)
    assert [r.message for r in page.items] == ["m6", "m5", "m4"] and page.next_cursor
    rest = store.reports.list(limit=3, cursor=page.next_cursor)
    last = store.reports.list(limit=3, cursor=rest.next_cursor)
    assert [r.message for r in rest.items + last.items] == ["m3", "m2", "m1", "m0"]
    assert last.next_cursor is None
    assert [r.message for r in store.reports.list(label="ham").items] == ["m6", "m3", "m0"]
    assert [r.message for r in store.reports.list(since=clock.now() - 5).items] == ["m6"]
    assert [r.message for r in store.reports.list(message="m2").items] == ["m2"]
    assert store.reports.list(reporter="bob").items == ()


def test_triage_records_who_when_and_a_note(store: Store, clock: FakeClock) -> None:
    info, _ = _report(store)
    clock.advance(60)
    done, before = store.reports.set_state(info.id, "confirmed", actor="sam", note="legit")
    assert before == "new"
    assert (done.state, done.triaged_by, done.triaged_at, done.note) == (
        "confirmed", "sam", clock.now(), "legit")
    assert [r.id for r in store.reports.list(state="confirmed").items] == [info.id]
    assert store.reports.list(state="new").items == ()
    _, before = store.reports.set_state(info.id, "rejected", actor="alice", note="oops")
    assert before == "confirmed"
    with pytest.raises(StoreError, match="invalid triage"):
        store.reports.set_state(info.id, "new", actor="sam")
    with pytest.raises(StoreError, match="no report"):
        store.reports.set_state(info.id + 100, "confirmed", actor="sam")


def test_distinct_messages_of_a_label_newest_report_first(store: Store,
                                                          clock: FakeClock) -> None:
    for message, reporter in (("m1", "ann"), ("m2", "ann"), ("m1", "bob")):
        clock.advance(1)
        info, _ = _report(store, message=message, reporter=reporter)
        store.reports.set_state(info.id, "confirmed", actor="sam")
    clock.advance(1)
    _report(store, message="m3")  # not confirmed
    assert store.reports.messages(label="ham") == ("m1", "m2")
    assert store.reports.messages(label="ham", state=None) == ("m3", "m1", "m2")
    assert store.reports.messages(label="phish") == ()


def test_a_report_outlives_its_message(store: Store, clock: FakeClock) -> None:
    raw = make_message(subject="Invoice 7")
    store.trace.record(make_result("gone", raw, recipients={"ann@example.net":
                                                            Action.QUARANTINE}), raw)
    info, _ = _report(store, message="gone", subject="Invoice 7")
    clock.advance(40 * 86400)
    assert store.retention.purge(30).messages == 1
    assert store.trace.get("gone") is None
    kept = store.reports.get(info.id)
    assert kept is not None and kept.subject == "Invoice 7" and kept.category == "phish"
