"""Trace search by every field an administrator types (issue 24): parts of a sender's address
or name, of a recipient, exact Message-ID, reference, client address, link domain, attachment
hash; sorting and paging both ways. Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from mailsift.core.errors import InputError
from mailsift.core.message import Attachment, Url
from mailsift.core.verdict import Action
from mailsift.store import Recordable, Store, TraceQuery
from mailsift.testing.messages import make_message
from mailsift.testing.storekit import FakeClock, make_result

_PDF = hashlib.sha256(b"invoice.pdf").hexdigest()


def _url(host: str, domain: str) -> Url:
    return Url(f"https://{host}/login", "https", host, domain, source="href")


def _seed(store: Store, clock: FakeClock) -> None:
    raw = make_message()
    results = [
        make_result("ms-paypal1", raw, recipients=["ann@example.net"],
                    mail_from="bounce@mailer.example", from_addr="service@pp-secure.example",
                    from_header='"PayPal Service" <service@pp-secure.example>',
                    subject="Your PayPal account is limited", client_ip="198.51.100.7",
                    message_id="<Limit-42@PP-Secure.example>",
                    urls=[_url("www.pp-secure.example", "pp-secure.example")]),
        make_result("ms-joann2", raw, recipients=["joann@example.net"],
                    from_addr="boss@corp.example", subject="Quarterly numbers",
                    client_ip="192.0.2.10", message_id="<q3@corp.example>",
                    attachments=[Attachment("numbers.pdf", "application/pdf",
                                            "application/pdf", 11, _PDF)]),
        make_result("ms-bob3", raw, recipients=["bob@example.net"],
                    from_addr="news@shop.example", subject="Sale: 50% off",
                    client_ip="2001:db8::1", message_id="<sale@shop.example>"),
    ]
    store.trace.record_many([Recordable(r, raw, received_at=clock.now() + i)
                             for i, r in enumerate(results)])


def _refs(store: Store, **query: str) -> list[str]:
    return sorted(r.message for r in store.trace.search(TraceQuery(**query)).items)


def test_sender_by_part_of_the_name_or_address(store: Store, clock: FakeClock) -> None:
    _seed(store, clock)
    assert _refs(store, sender="paypal") == ["ms-paypal1"]          # display name only
    assert _refs(store, sender="PAYPAL") == ["ms-paypal1"]          # any case
    assert _refs(store, sender="pp-secure") == ["ms-paypal1"]       # part of the address
    assert _refs(store, sender="mailer.example") == ["ms-paypal1"]  # envelope sender
    assert _refs(store, sender="boss@corp.example") == ["ms-joann2"]  # whole address: exact
    assert _refs(store, sender="@shop.example") == ["ms-bob3"]      # a whole domain
    assert _refs(store, sender="100%") == []                       # wildcards are literal


def test_recipient_by_local_part(store: Store, clock: FakeClock) -> None:
    _seed(store, clock)
    assert _refs(store, recipient="ann@") == ["ms-joann2", "ms-paypal1"]  # contains "ann@"
    assert _refs(store, recipient="ANN@example.net") == ["ms-paypal1"]    # whole: exact
    assert _refs(store, recipient="@example.net") == ["ms-bob3", "ms-joann2", "ms-paypal1"]
    assert _refs(store, recipient="bob") == ["ms-bob3"]


def test_subject_contains_any_case(store: Store, clock: FakeClock) -> None:
    _seed(store, clock)
    assert _refs(store, subject="paypal ACCOUNT") == ["ms-paypal1"]
    assert _refs(store, subject="50%") == ["ms-bob3"]


def test_exact_lookups(store: Store, clock: FakeClock) -> None:
    _seed(store, clock)
    assert _refs(store, message_id="limit-42@pp-secure.example") == ["ms-paypal1"]
    assert _refs(store, message_id=" <Limit-42@PP-Secure.example> ") == ["ms-paypal1"]
    assert _refs(store, message_id="limit-42") == []  # exact, not a part
    assert _refs(store, ref="ms-joann2") == ["ms-joann2"]
    assert _refs(store, ref="ms-jo") == ["ms-joann2"]  # a reference's beginning
    assert _refs(store, ref="ms-%") == []
    assert _refs(store, client_ip="198.51.100.7") == ["ms-paypal1"]
    assert _refs(store, client_ip="2001:0db8:0000::1") == ["ms-bob3"]  # normalised
    assert _refs(store, url_domain="pp-secure.example") == ["ms-paypal1"]
    assert _refs(store, url_domain="WWW.pp-secure.example.") == ["ms-paypal1"]
    assert _refs(store, url_domain="secure.example") == []
    assert _refs(store, attachment=_PDF.upper()) == ["ms-joann2"]
    assert _refs(store, attachment="0" * 64) == []


def test_bad_lookups_are_input_errors(store: Store) -> None:
    with pytest.raises(InputError, match="not an IP address"):
        store.trace.search(TraceQuery(client_ip="1.2.3"))
    with pytest.raises(InputError, match="SHA-256"):
        store.trace.search(TraceQuery(attachment="abc"))
    with pytest.raises(InputError, match="cannot sort"):
        store.trace.search(TraceQuery(), sort="password")
    # a Message-ID that is only brackets would filter nothing: refused, not "every message"
    with pytest.raises(InputError, match="not a Message-ID"):
        store.trace.search(TraceQuery(message_id="<<>>"))
    # PostgreSQL refuses a NUL in a parameter; it is a clear error on both backends
    for field in ("sender", "subject", "url_domain", "ref"):
        with pytest.raises(InputError, match="NUL character"):
            store.trace.count(TraceQuery(**{field: "pay\x00pal"}))


def test_purge_removes_search_rows(store: Store, clock: FakeClock) -> None:
    _seed(store, clock)
    clock.advance(40 * 86400)
    assert store.retention.purge(30).messages == 3
    assert _refs(store, url_domain="pp-secure.example") == []
    assert _refs(store, attachment=_PDF) == []


def _many(store: Store, clock: FakeClock, n: int) -> None:
    raw = make_message()
    items = []
    for i in range(n):
        res = make_result(f"ms-{i:03d}", raw, recipients={"a@example.net": Action.DELIVER},
                          subject=f"s{i % 4}", from_addr=f"x{i % 3}@example.org")
        # pairs of rows share a receive time: ties are broken by the row id
        items.append(Recordable(res, raw, received_at=clock.now() + i // 2))
    store.trace.record_many(items)


@pytest.mark.parametrize(("sort", "descending"), [("received", True), ("received", False),
                                                  ("subject", False), ("sender", True),
                                                  ("score", True)])
def test_paging_forward_and_back_is_stable(store: Store, clock: FakeClock, sort: str,
                                           descending: bool) -> None:
    _many(store, clock, 23)
    q = TraceQuery(recipient="a@example.net")
    pages = []
    page = store.trace.search(q, limit=5, sort=sort, descending=descending)
    assert page.prev_cursor is None
    while True:
        pages.append([r.id for r in page.items])
        if not page.next_cursor:
            break
        page = store.trace.search(q, cursor=page.next_cursor, limit=5, sort=sort,
                                  descending=descending)
    flat = [i for p in pages for i in p]
    assert len(flat) == 23 and len(set(flat)) == 23
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    # the order is the sort's, ties by id
    everything = store.trace.search(q, limit=100, sort=sort, descending=descending).items
    assert [r.id for r in everything] == flat
    # and back again, page by page, to the first
    back = []
    while page.prev_cursor:
        page = store.trace.search(q, cursor=page.prev_cursor, limit=5, sort=sort,
                                  descending=descending)
        back.append([r.id for r in page.items])
    assert back == pages[-2::-1]
    assert page.next_cursor is not None


def test_a_cursor_of_another_sort_is_refused(store: Store, clock: FakeClock) -> None:
    _many(store, clock, 4)
    page = store.trace.search(TraceQuery(), limit=2, sort="subject")
    with pytest.raises(InputError, match="another sort"):
        store.trace.search(TraceQuery(), cursor=page.next_cursor, limit=2)


def test_iterate_reads_every_row_in_pages(store: Store, clock: FakeClock) -> None:
    _many(store, clock, 12)
    rows = list(store.trace.iterate(TraceQuery(), page_size=5))
    assert [r.message for r in rows] == [f"ms-{i:03d}" for i in range(11, -1, -1)]


def test_links_and_attachments_of_a_parsed_message(store: Store) -> None:
    """What the parser finds in real bytes is what the look-ups find: link hosts (and their
    registrable domain), attachment hashes (a zip member's too), the Reply-To header."""
    import io
    import zipfile

    from mailsift.parsing import parse_message

    inner = b"%PDF-1.4 payment details"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("details.pdf", inner)
    raw = make_message(
        text="Sign in at https://login.secure-pay.example.co.uk/verify today.\n",
        headers={"Reply-To": "collect@elsewhere.example"},
        attachments=[("details.zip", buf.getvalue(), "application/zip")])
    msg = parse_message(raw)
    res = make_result("ms-parsed", raw, urls=msg.urls, attachments=msg.attachments)
    res = dataclasses.replace(res, message=dataclasses.replace(
        res.message, headers=msg.headers, header_index=msg.header_index))
    store.trace.record(res, raw)
    assert _refs(store, url_domain="login.secure-pay.example.co.uk") == ["ms-parsed"]
    assert _refs(store, url_domain="example.co.uk") == ["ms-parsed"]  # registrable
    assert _refs(store, attachment=hashlib.sha256(inner).hexdigest()) == ["ms-parsed"]
    assert _refs(store, attachment=hashlib.sha256(buf.getvalue()).hexdigest()) == [
        "ms-parsed"]
    rec = store.trace.get("ms-parsed")
    assert rec is not None and rec.reply_to_header == "collect@elsewhere.example"
