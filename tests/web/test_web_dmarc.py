"""The DMARC page in a real browser: aggregate reports from three providers ingested, the
admin sees who sends as our domain, who fails, what p=reject would do, and downloads the CSV;
a recipient gets no DMARC page."""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web_support import PASSWORD, screenshot, serve, session_pages

from mailsift.config.schema import Settings
from mailsift.services.dmarc.ingest import Ingestor
from mailsift.services.store_services import StoreServices
from mailsift.store import Store
from mailsift.store.dmarc import DmarcStore

SAMPLES = Path(__file__).resolve().parents[1] / "services" / "dmarc" / "data" / "ingest"


@dataclass
class Site:
    url: str
    store: Store


def _today_sample(name: str) -> bytes:
    """A provider sample moved to yesterday (UTC), so it falls in the page's window."""
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    begin = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
    text = (SAMPLES / name).read_text()
    text = text.replace("1799971200", str(begin)).replace("1800057599", str(begin + 86399))
    return text.replace("1800057600", str(begin + 86400)).encode()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from fastapi import FastAPI

    from mailsift.interfaces.web import build_web_router

    tmp = tmp_path_factory.mktemp("dmarc-console")
    settings = Settings.model_validate({"store": {"data_dir": str(tmp / "data")},
                                        "dmarc_reports": {"our_domains": ["ours.example"]}})
    services = StoreServices.open(settings)
    store = services.store
    ingestor = Ingestor(DmarcStore(store.engine, store.clock), settings.dmarc_reports)
    for name in ("google-style.xml", "microsoft-style.xml", "yahoo-style.xml"):
        result = ingestor.ingest_bytes(gzip.compress(_today_sample(name)), name + ".gz")
        assert result.errors == [], result.errors
    store.users.create("admin", PASSWORD, "admin")
    store.users.create("ann", PASSWORD, "recipient", mailbox="ann@example.net")
    app = FastAPI()
    app.include_router(build_web_router(services, settings=settings))
    try:
        with serve(app) as url:
            yield Site(url, store)
    finally:
        services.close()


@pytest.fixture
def page_for(browser: Any, site: Site) -> Iterator[Any]:
    with session_pages(browser, site.url, site.store, accept_downloads=True) as make:
        yield make


def test_the_admin_sees_senders_failures_and_what_reject_would_do(
        page_for: Any, tmp_path: Path) -> None:
    admin = page_for("admin")
    admin.goto("/")
    admin.click("nav >> text=DMARC")
    row = admin.locator("#dmarc-outlook tr[data-domain='ours.example']")
    assert row.locator(".would-reject").inner_text() == "10"
    assert row.locator(".lost").inner_text() == "7"  # the CRM vendor that sometimes passes
    assert row.locator(".stopped").inner_text() == "3"  # never passes
    senders = admin.locator("#dmarc-senders")
    assert "never passes" in senders.locator("tr[data-sender='203.0.113.66']").inner_text()
    crm = senders.locator("tr[data-sender='198.51.100.40']").inner_text()
    assert "sometimes fails" in crm and "ours.example:crm1" in crm
    assert admin.locator("#dmarc-received tr").count() == 4  # header + three reports
    assert "Failure reports (ruf) are neither sent nor read" in admin.content()
    screenshot(admin, "dmarc", tmp_path)
    with admin.expect_download() as info:
        admin.click("#dmarc-csv")
    csv_text = Path(info.value.path()).read_text()
    assert csv_text.startswith("header_from,source_ip,messages")
    assert "203.0.113.66" in csv_text


def test_a_recipient_gets_no_dmarc_page(page_for: Any) -> None:
    ann = page_for("ann")
    ann.goto("/quarantine")
    assert ann.locator("nav >> text=DMARC").count() == 0
    ann.goto("/dmarc")
    assert ann.locator("h1").inner_text() == "Not allowed (403)"
