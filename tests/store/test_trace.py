"""Trace: record, search by every filter, keyset paging, read back."""

from __future__ import annotations

import pytest

from mailsift.core.errors import InputError, StoreError
from mailsift.core.findings import ArtifactState, Finding
from mailsift.core.verdict import Action
from mailsift.store import Recordable, Store, TraceQuery
from mailsift.testing.messages import make_message
from mailsift.testing.storekit import FakeClock, make_result


def _finding(code: str, version: str = "1") -> Finding:
    return Finding(code, 5.0, evidence=("http://bad.example/",), detector="rules",
                   category="phish", artifact="rules/default", version=version)


def _seed(store: Store, clock: FakeClock) -> None:
    items = []
    for i in range(30):
        raw = make_message(subject=f"Invoice {i}", message_id=f"<m{i}@example.org>")
        rcpts = {"a@example.net": Action.QUARANTINE, "B@Example.net": Action.DELIVER}
        res = make_result(
            f"m{i:03d}", raw, recipients=rcpts, subject=f"Invoice {i}",
            mail_from=f"s{i % 3}@sender.example", from_addr=f"boss{i % 2}@corp.example",
            findings=[_finding("RULE_INVOICE" if i % 2 else "RULE_OTHER", str(i % 4))],
            versions={"rules/default": str(i % 4), "model/spam": "m7"},
        )
        items.append(Recordable(res, raw, received_at=clock.now() + i))
    store.trace.record_many(items)


def test_record_and_get_roundtrip(store: Store, clock: FakeClock) -> None:
    raw = make_message(subject="Hi", html="<p>x</p>")
    finding = Finding("RULE_X", 3.0, ("evil.example",), "rules", "phish", "why", "pack", "v9",
                      ArtifactState.SHADOW)
    res = make_result("abc", raw, recipients=["User@Example.net"], findings=[finding],
                      versions={"pack": "v9"})
    assert store.trace.record(res, raw) == "abc"
    rec = store.trace.get("abc")
    assert rec is not None
    assert rec.rcpt_to == ("User@Example.net",)
    assert rec.mail_from == "sender@example.org"
    assert rec.client_ip == "192.0.2.10"
    assert rec.size == len(raw)
    assert rec.category == "phish" and rec.action == "quarantine"
    assert rec.findings[0]["code"] == "RULE_X"
    assert rec.findings[0]["evidence"] == ["evil.example"]
    assert rec.findings[0]["state"] == "shadow"
    assert rec.versions == {"pack": "v9"}
    assert [r.recipient for r in rec.recipients] == ["user@example.net"]
    assert rec.recipients[0].status == "quarantined"
    assert store.trace.raw("abc") == raw
    assert store.trace.get("nope") is None


def test_delivered_messages_keep_no_raw_by_default(store: Store) -> None:
    raw = make_message()
    store.trace.record(make_result("d1", raw, recipients={"x@example.net": Action.DELIVER}), raw)
    rec = store.trace.get("d1")
    assert rec is not None and not rec.raw_available
    assert rec.recipients[0].status == "accepted"
    with pytest.raises(StoreError):
        store.trace.raw("d1")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (TraceQuery(sender="s1@sender.example"), 20),
        (TraceQuery(sender="boss0@corp.example"), 30),
        (TraceQuery(sender="@sender.example"), 60),
        (TraceQuery(recipient="b@example.net"), 30),
        (TraceQuery(subject="invoice 1"), 22),  # 1, 10-19 -> 11 messages x 2 recipients
        (TraceQuery(action="quarantine"), 30),
        (TraceQuery(category="clean"), 30),
        (TraceQuery(finding="RULE_INVOICE"), 30),
        (TraceQuery(finding="RULE_INVOICE", version="1"), 16),  # i odd and i%4==1: 8 msgs
        (TraceQuery(artifact="rules/default", version="2"), 14),  # i%4==2: 7 msgs
        (TraceQuery(artifact="model/spam"), 60),
        (TraceQuery(artifact="model/spam", version="other"), 0),
        (TraceQuery(since=1_800_000_010.0, until=1_800_000_020.0), 20),
        (TraceQuery(message="m005"), 2),
        (TraceQuery(subject="100%_"), 0),
    ],
)
def test_search_filters(store: Store, clock: FakeClock, query: TraceQuery,
                        expected: int) -> None:
    _seed(store, clock)
    assert store.trace.count(query)[0] == expected


def test_keyset_paging_visits_every_row_once(store: Store, clock: FakeClock) -> None:
    _seed(store, clock)
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = store.trace.search(TraceQuery(), cursor=cursor, limit=7)
        seen.extend(r.id for r in page.items)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 60
    assert pages == 9
    times = [r.received_at for r in store.trace.search(TraceQuery(), limit=60).items]
    assert times == sorted(times, reverse=True)


def test_bad_cursor_is_an_input_error(store: Store) -> None:
    with pytest.raises(InputError):
        store.trace.search(TraceQuery(), cursor="!!!")


def test_set_status(store: Store) -> None:
    raw = make_message()
    store.trace.record(make_result("s1", raw, recipients={"x@example.net": Action.DELIVER,
                                                          "y@example.net": Action.DELIVER}), raw)
    assert store.trace.set_status("s1", "delivered", ["X@example.net"]) == 1
    rec = store.trace.get("s1")
    assert rec is not None
    assert {r.recipient: r.status for r in rec.recipients} == {
        "x@example.net": "delivered", "y@example.net": "accepted"}
    with pytest.raises(StoreError):
        store.trace.set_status("s1", "bogus")


def test_duplicate_id_is_refused(store: Store) -> None:
    raw = make_message()
    store.trace.record(make_result("dup", raw), raw)
    with pytest.raises(StoreError):
        store.trace.record(make_result("dup", raw), raw)


def test_statuses(store: Store) -> None:
    raw = make_message()
    store.trace.record(make_result("st", raw, recipients={"A@x.example": Action.QUARANTINE,
                                                          "b@x.example": Action.DELIVER}), raw)
    assert store.trace.statuses("st") == {"a@x.example": "quarantined", "b@x.example": "accepted"}
    assert store.trace.statuses("unknown") == {}


def test_write_batch_records_and_updates_in_one_transaction(store: Store) -> None:
    raw = make_message()
    new = make_result("ms-new", raw, recipients={"a@example.net": Action.DELIVER})
    store.trace.record(make_result("ms-old", raw, recipients=["b@example.net"]), raw)
    store.trace.write_batch([Recordable(new, raw)],
                            [("ms-new", "delivered", ["A@example.net"]),
                             ("ms-old", "failed", None)])
    assert store.trace.statuses("ms-new") == {"a@example.net": "delivered"}
    assert store.trace.statuses("ms-old") == {"b@example.net": "failed"}
    again = make_result("ms-again", raw, recipients=["c@example.net"])
    with pytest.raises(StoreError):  # a bad change rolls the whole batch back
        store.trace.write_batch([Recordable(again, raw)], [("ms-new", "bogus", None)])
    assert store.trace.get("ms-again") is None


def test_write_batch_applies_status_changes_in_order(store: Store) -> None:
    raw = make_message()
    store.trace.record(make_result("ms-o", raw, recipients=["a@example.net", "b@example.net"]),
                       raw)
    store.trace.write_batch([], [("ms-o", "deferred", ["a@example.net"]),
                                 ("ms-o", "delivered", ["A@example.net", "b@example.net"])])
    assert store.trace.statuses("ms-o") == {"a@example.net": "delivered",
                                            "b@example.net": "delivered"}
    store.trace.write_batch([], [("ms-o", "failed", None),
                                 ("ms-o", "released", ["b@example.net"])])
    assert store.trace.statuses("ms-o") == {"a@example.net": "failed",
                                            "b@example.net": "released"}
    with pytest.raises(StoreError):
        store.trace.write_batch([], [("ms-o", "delivered", ["a@example.net"]),
                                     ("ms-o", "bogus", ["b@example.net"])])
    assert store.trace.statuses("ms-o")["a@example.net"] == "failed"  # rolled back
