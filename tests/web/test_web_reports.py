"""User reports in a real browser: a recipient reports a quarantined invoice as not junk from
its message page (twice: one report) and a delivered phish by its reference; an admin finds
both on the Reports page and confirms the invoice, releasing it to the recipient and allowing
its sender; the recipient sees the report confirmed. Other recipients' messages stay hidden.

Served like the other console tests (uvicorn in a thread, Debian's Chromium via Playwright)
over a small store: two messages, three users, an SMTP sink as the release next hop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web_support import PASSWORD, screenshot, serve, session_pages

from mailsift.config.schema import Settings
from mailsift.core.findings import Finding
from mailsift.core.verdict import Action
from mailsift.services.store_services import StoreServices
from mailsift.store import Store
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink
from mailsift.testing.storekit import make_result

LURE = Finding("INVOICE_LURE", 7.0, ("invoice",), "rules", "phish", artifact="rules:site",
               version="1")


@dataclass
class Site:
    url: str
    store: Store
    sink: SmtpSink


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from fastapi import FastAPI

    from mailsift.interfaces.web import build_web_router

    tmp = tmp_path_factory.mktemp("reports-console")
    with SmtpSink() as sink:
        settings = Settings.model_validate({
            "store": {"data_dir": str(tmp / "data"), "release_port": sink.port}})
        services = StoreServices.open(settings)
        store = services.store
        raw = make_message(subject="Invoice 1042 from Acme Hosting", to="ann@example.net",
                           from_="Acme Billing <billing@acme-hosting.example>",
                           message_id="<inv-1042@acme-hosting.example>",
                           text="Your invoice 1042 is attached.\n")
        store.trace.record(make_result(
            "ms-invoice", raw, recipients={"ann@example.net": Action.QUARANTINE},
            findings=[LURE], subject="Invoice 1042 from Acme Hosting",
            from_addr="billing@acme-hosting.example"), raw)
        raw = make_message(subject="Your mailbox is full", to="ann@example.net",
                           message_id="<full@paypa1.example>")
        store.trace.record(make_result(
            "ms-phish", raw, recipients={"ann@example.net": Action.DELIVER,
                                         "bob@example.net": Action.DELIVER},
            subject="Your mailbox is full", from_addr="it-support@paypa1.example"), raw)
        for name, role, mailbox in (("admin", "admin", None), ("analyst", "analyst", None),
                                    ("ann", "recipient", "ann@example.net"),
                                    ("eve", "recipient", "eve@example.net")):
            store.users.create(name, PASSWORD, role, mailbox=mailbox)
        app = FastAPI()
        app.include_router(build_web_router(services, settings=settings))
        try:
            with serve(app) as url:
                yield Site(url, store, sink)
        finally:
            services.close()


@pytest.fixture
def page_for(browser: Any, site: Site) -> Iterator[Any]:
    """A page in a fresh browser context, signed in with a session started in the store (the
    sign-in form has its own tests)."""
    with session_pages(browser, site.url, site.store) as make:
        yield make


def test_a_recipient_reports_and_an_admin_confirms(page_for: Any, site: Site,
                                                  tmp_path: Path) -> None:
    ann = page_for("ann")
    ann.goto("/quarantine")
    ann.click("text=Invoice 1042 from Acme Hosting")
    ann.fill("#report-form input[name=comment]", "our hosting bill, every month")
    ann.click("#report-ham")
    assert "reported as not junk" in ann.inner_text(".flash.ok")
    ann.click("#report-ham")  # a second click files nothing new
    assert "already reported as not junk" in ann.inner_text(".flash.ok")
    assert ann.locator("#report ul.reports li").count() == 1
    # a delivered message is reported by the reference its copy carries (X-Mailsift-Ref)
    ann.click("#nav-reports")
    ann.fill("#report-by-ref input[name=message]", "ms-phish")
    ann.click("#report-by-ref button[value=phish]")
    assert "reported as phishing" in ann.inner_text(".flash.ok")
    assert ann.locator("#reports tr[data-report]").count() == 2
    assert ann.locator("form.triage").count() == 0  # recipients do not triage

    eve = page_for("eve")  # not eve's mail: as if it did not exist
    eve.goto("/reports")
    eve.fill("#report-by-ref input[name=message]", "ms-phish")
    eve.click("#report-by-ref button[value=spam]")
    assert eve.locator("h1").inner_text() == "Not found (404)"
    eve.goto("/reports")
    assert eve.locator("#reports tr[data-report]").count() == 0

    (ham,) = [r for r in site.store.reports.list().items if r.label == "ham"]
    admin = page_for("admin")
    admin.goto("/")
    admin.click("#nav-reports")
    assert admin.inner_text("#waiting") == "2"
    row = admin.locator(f"#reports tr[data-report='{ham.id}']")
    assert "our hosting bill" in row.inner_text() and "INVOICE_LURE" in row.inner_text()
    screenshot(admin, "reports", tmp_path)
    row.locator("input[name=note]").fill("known supplier")
    row.locator("input[name=release]").check()
    row.locator("select[name=list_entry]").select_option("sender")
    row.locator("button.confirm").click()
    flash = admin.inner_text(".flash.ok")
    assert f"report #{ham.id} confirmed" in flash
    assert "released to ann@example.net" in flash
    assert "allow sender billing@acme-hosting.example added" in flash
    assert site.sink.wait_for(1)
    assert site.sink.copies() == {("<inv-1042@acme-hosting.example>", "ann@example.net"): 1}
    # the row left the "new" tab; the confirmed tab has it with who and the note
    assert admin.locator(f"#reports tr[data-report='{ham.id}']").count() == 0
    admin.click(".tabs >> text=confirmed")
    confirmed = admin.locator(f"#reports tr[data-report='{ham.id}']").inner_text()
    assert "by admin" in confirmed and "known supplier" in confirmed

    analyst = page_for("analyst")  # triages and releases, but adds no list entries
    analyst.goto("/reports")
    assert analyst.locator("form.triage").count() == 1
    assert analyst.locator("select[name=list_entry]").count() == 0

    ann.goto("/quarantine/ms-invoice")
    assert "confirmed" in ann.inner_text("#report ul.reports")
    assert "released" in ann.inner_text("#recipients")
    actions = [e.action for e in site.store.audit.entries(action=None)]
    assert {"report.create", "report.triage", "quarantine.release", "lists.add"} <= set(actions)
