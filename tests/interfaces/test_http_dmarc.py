"""``/v1/dmarc/...``: tokens and roles, the senders/domains/daily JSON, the CSV export, the
reports we send."""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mailsift.config.dmarc import DmarcReportSettings
from mailsift.interfaces.http import create_app
from mailsift.interfaces.http.routes_dmarc import router
from mailsift.services.access import Principal
from mailsift.services.dmarc.ingest import Ingestor
from mailsift.services.store_services import StoreServices
from mailsift.store import Store
from mailsift.store.dmarc import DmarcStore
from mailsift.testing.storekit import temp_store_settings

SAMPLES = Path(__file__).resolve().parents[1] / "services" / "dmarc" / "data" / "ingest"
ROOT = Principal("root", "admin")


def _yesterday(name: str) -> bytes:
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    begin = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
    text = (SAMPLES / name).read_text().replace("1799971200", str(begin))
    return text.replace("1800057599", str(begin + 86399)).replace(
        "1800057600", str(begin + 86400)).encode()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[TestClient, StoreServices]]:
    with temp_store_settings("sqlite", tmp_path) as settings:
        svc = StoreServices.build(Store.open(settings))
        store = svc.store
        ingestor = Ingestor(DmarcStore(store.engine, store.clock), DmarcReportSettings())
        for name in ("google-style.xml", "microsoft-style.xml"):
            assert ingestor.ingest_bytes(gzip.compress(_yesterday(name)), name).errors == []
        try:
            with TestClient(create_app(svc, routers=[router])) as client:
                yield client, svc
        finally:
            svc.close()


def _auth(svc: StoreServices, role: str, subject: str | None = None) -> dict[str, str]:
    token, _ = svc.tokens.create(ROOT, role, subject=subject)
    return {"Authorization": f"Bearer {token}"}


def test_senders_domains_daily_and_csv(env: tuple[TestClient, StoreServices]) -> None:
    client, svc = env
    analyst = _auth(svc, "analyst")
    assert client.get("/v1/dmarc/senders").status_code == 401
    got = client.get("/v1/dmarc/senders", headers=analyst, params={"days": 3})
    assert got.status_code == 200, got.text
    senders = {s["source_ip"]: s for s in got.json()["senders"]}
    assert senders["192.0.2.25"]["messages"] == 160
    assert senders["192.0.2.25"]["dkim_selectors"] == ["ours.example:s2026"]
    assert senders["203.0.113.66"]["verdict"].startswith("never passes")
    domains = client.get("/v1/dmarc/domains", headers=analyst).json()["domains"]
    assert domains == [{"domain": "ours.example", "published_p": "none", "messages": 170,
                        "dmarc_pass": 160, "dmarc_fail": 10, "sources": 3,
                        "p_reject_would_reject": 10, "p_reject_would_lose_legitimate": 0,
                        "p_reject_would_stop_unauthorised": 10}]
    daily = client.get("/v1/dmarc/daily", headers=analyst,
                       params={"domain": "ours.example"}).json()["rows"]
    assert sum(r["messages"] for r in daily) == 170
    csv_resp = client.get("/v1/dmarc/senders.csv", headers=analyst)
    assert csv_resp.headers["content-type"].startswith("text/csv")
    lines = csv_resp.text.splitlines()
    assert lines[0].startswith("header_from,source_ip") and len(lines) == 4
    reports = client.get("/v1/dmarc/reports", headers=analyst).json()["reports"]
    assert {r["org_name"] for r in reports} == {"google.com", "Enterprise Outlook"}
    assert client.get("/v1/dmarc/outgoing", headers=analyst).json() == {"jobs": []}
    assert client.get("/v1/dmarc/senders", headers=analyst,
                      params={"days": 0}).status_code == 422


def test_recipients_may_not_read_dmarc(env: tuple[TestClient, StoreServices]) -> None:
    client, svc = env
    bob = _auth(svc, "recipient", "bob@corp.example")
    for path in ("/v1/dmarc/senders", "/v1/dmarc/domains", "/v1/dmarc/senders.csv",
                 "/v1/dmarc/reports", "/v1/dmarc/outgoing", "/v1/dmarc/daily"):
        assert client.get(path, headers=bob).status_code == 403, path
