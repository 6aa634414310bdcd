"""Day-to-day console work in a real browser (issue 24, points 1, 2 and 5): search by part of
a sender's name or a recipient's local part, page forward and back, export a search (streamed,
audited), read why a copy failed (the next hop's SMTP reply), and audit and request lists in
words, with times in the viewer's zone."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import httpx2
from web_support import ADMIN, PASSWORD, Console, screenshot

from mailsift.core.verdict import Action
from mailsift.services.access import Principal
from mailsift.store import TraceQuery
from mailsift.store.deliveries import Attempt, DeliveryLog
from mailsift.testing.messages import make_message
from mailsift.testing.storekit import make_result

# what a Python repr or a raw dict looks like on a page
_REPR = re.compile(r"\{'|\[\{|\b\w+=\d{6,}|\bNone\b|\bTrue\b|\bFalse\b")


def _rows(page: Any) -> list[list[str]]:
    return [[c.strip() for c in r.locator("td").all_inner_texts()]
            for r in page.locator("#results tbody tr").all()]


def test_sender_by_part_of_the_name_and_recipient_by_local_part(
        new_page: Any, console: Console, tmp_path: Path) -> None:
    page = new_page()
    page.goto("/trace")
    page.fill("input[name=sender]", "paypal")
    page.click("button:text('Search')")
    expected, _ = console.store.trace.count(TraceQuery(sender="paypal"))
    assert expected == 13  # 8 lures (4 to two recipients) and the hostile one
    assert page.locator("#match-count").inner_text() == "13"
    assert {r[1] for r in _rows(page)} == {"service@paypa1-secure.example"}
    page.fill("input[name=sender]", "")
    page.fill("input[name=recipient]", "ann@")
    page.click("button:text('Search')")
    assert page.locator("#match-count").inner_text() == "4"
    assert {r[2] for r in _rows(page)} == {"ann@example.net"}
    screenshot(page, "trace-search", tmp_path)


def test_sort_page_size_and_previous_next(new_page: Any, console: Console) -> None:
    page = new_page()
    page.goto("/trace?size=25")
    total = int(page.locator("#match-count").inner_text())
    assert total > 50
    first = _rows(page)
    assert len(first) == 25 and page.locator("#page-prev").count() == 0
    page.click("#page-next")
    second = _rows(page)
    assert len(second) == 25 and not {r[3] for r in second} & {r[3] for r in first} - {""}
    page.click("#page-next")
    third = _rows(page)
    assert len(third) == total - 50 and page.locator("#page-next").count() == 0
    page.click("#page-prev")
    assert _rows(page) == second
    page.click("#page-prev")
    assert _rows(page) == first and page.locator("#page-prev").count() == 0
    page.click("#page-next")
    page.click("#page-first")
    assert _rows(page) == first
    # sort by subject, ascending: the column heading says so and the rows follow it
    page.click("#results th a.sort:text('Subject')")
    assert page.locator("#results th[aria-sort=ascending]").inner_text().startswith("Subject")
    subjects = [r[3] for r in _rows(page)]
    assert subjects == sorted(subjects)


def test_export_csv_streams_every_row_and_is_audited(new_page: Any, console: Console,
                                                    tmp_path: Path) -> None:
    page = new_page()
    page.goto("/trace?sender=paypal&size=25")
    with page.expect_download() as info:
        page.click("#export-csv")
    path = info.value.path()
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    assert len(rows) == 13
    assert {r["from"] for r in rows} == {"service@paypa1-secure.example"}
    assert all(r["reference"].startswith("ms-") for r in rows)
    (entry, *_) = console.store.audit.entries(action="trace.export")
    assert entry.actor == "admin" and entry.detail["rows"] == 13
    assert entry.detail["query"] == {"sender": "paypal"}
    # streamed: sent in chunks, without a length known up front; JSON likewise
    with httpx2.Client(base_url=console.url) as client:
        _sign_in(client, "analyst")
        with client.stream("GET", "/trace/export?format=json&sender=paypal") as response:
            assert response.status_code == 200
            assert "content-length" not in response.headers
            assert response.headers["content-type"].startswith("application/json")
            body = b"".join(response.iter_bytes())
        assert body.count(b'"reference"') == 13
        # a recipient may not export the trace, and nothing is audited for the attempt
        _sign_in(client, "ann")
        before = len(console.store.audit.entries(action="trace.export"))
        assert client.get("/trace/export?format=csv").status_code == 403
        assert len(console.store.audit.entries(action="trace.export")) == before


def _failed_message(console: Console) -> str:
    raw = make_message(subject="Contract draft", message_id="<contract-1@example.org>")
    res = make_result("ms-failed-contract", raw,
                      recipients={"dan@example.net": Action.DELIVER,
                                  "eve@example.net": Action.DELIVER},
                      subject="Contract draft", from_addr="legal@partner.example")
    store = console.store
    store.trace.record(res, raw)
    now = store.clock.now()
    DeliveryLog(store.engine).add(res.id, [
        Attempt("dan@example.net", now, "delivered", "250 2.0.0 Ok: queued as 4F2A1"),
        Attempt("eve@example.net", now, "deferred", "451 4.3.0 mailbox temporarily locked",
                1, now + 60),
        Attempt("eve@example.net", now + 60, "failed",
                "550 5.1.1 <eve@example.net>: Recipient address rejected", 2)])
    store.trace.set_status(res.id, "delivered", ["dan@example.net"])
    store.trace.set_status(res.id, "failed", ["eve@example.net"])
    return res.id


def test_delivery_details_show_a_failed_recipients_reply(new_page: Any, console: Console,
                                                         tmp_path: Path) -> None:
    message = _failed_message(console)
    page = new_page("analyst")
    page.goto(f"/trace/{message}")
    failed = page.locator("#delivery .delivery.failed")
    assert failed.count() == 1
    text = failed.inner_text()
    assert "eve@example.net" in text and "not delivered" in text
    assert "550" in text and "Recipient address rejected" in text
    assert "attempt 2" in text
    ok = page.locator("#delivery .delivery[data-recipient='dan@example.net']").inner_text()
    assert "250" in ok and "queued as 4F2A1" in ok
    # "failed" stands out: its own colour and border, not only a word
    colour = failed.evaluate("e => getComputedStyle(e).borderLeftColor")
    assert colour == "rgb(185, 28, 28)"
    assert page.locator("#reply-to").inner_text().startswith("none")
    screenshot(page, "delivery-failed", tmp_path)


def test_authentication_and_reply_to_in_plain_words(new_page: Any, console: Console) -> None:
    page = new_page()
    page.goto(f"/trace/{console.ids['phish'][0]}")
    auth = page.locator("#auth").inner_text()
    assert "DMARC" in auth and "DKIM" in auth
    assert not _REPR.search(auth), auth
    assert not _REPR.search(page.locator("#explanation").inner_text())


def test_audit_and_requests_read_as_words_in_the_viewers_zone(
        browser: Any, new_page: Any, console: Console) -> None:
    svc = console.services
    svc.lists.add(ADMIN, "sender", "ceo@partner.example", "allow",
                  expires_at=console.store.clock.now() + 86400, note="merger talks")
    message = console.ids["phish"][5]  # tom and ann
    svc.quarantine.request_release(Principal("ann", "recipient", "ann@example.net"), message,
                                   reason="I expect a payment notice")
    svc.trace.export(ADMIN, TraceQuery(sender="paypal", since=1.0), "csv")
    context = browser.new_context(base_url=console.url, timezone_id="Asia/Kolkata",
                                  viewport={"width": 1360, "height": 900})
    try:
        page = context.new_page()
        page.goto("/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto("/audit")
        table = page.locator("#audit").inner_text()
        assert not _REPR.search(table), table
        assert "allow sender ceo@partner.example" in table
        assert "exported" in table and "sender “paypal”" in table
        # times in the viewer's zone (UTC+5:30), the UTC time kept as the tooltip
        stamp = page.locator("#audit time").first
        assert stamp.get_attribute("data-localised") == ""
        assert re.search(r"GMT\+5:30|IST", stamp.inner_text()), stamp.inner_text()
        assert stamp.get_attribute("title").endswith(" UTC")
        page.goto("/requests")
        row = page.locator("#requests tr").filter(has_text="I expect a payment notice")
        cells = row.inner_text()
        assert message in cells  # the whole reference, not a prefix
        assert "Your account has been suspended" in cells and "PayPal" in cells
        assert "phish" in cells
        assert not _REPR.search(page.locator("#requests").inner_text())
    finally:
        context.close()


def _sign_in(client: httpx2.Client, user: str) -> None:
    client.cookies.clear()
    form = client.get("/login")
    token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    r = client.post("/login", data={"username": user, "password": PASSWORD, "csrf": token,
                                    "next": "/"})
    assert r.status_code == 303
