"""HTTP scanning: POST /v1/scan (mailsift JSON), POST /checkv2 (Rspamd protocol), health and
Prometheus metrics, against a real gateway (scan pool in-process, SQLite store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mailsift.app import build_gateway
from mailsift.config.schema import Settings
from mailsift.interfaces.http.scan_api import build_scan_router
from mailsift.testing.messages import make_message


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings.model_validate({
        "store": {"data_dir": str(tmp_path / "data")},
        "gateway": {"workers": 0},
        "scan": {"offline": True},
    })
    parts = build_gateway(settings)
    app = FastAPI()
    app.include_router(build_scan_router(parts.gateway, max_bytes=100_000))
    with TestClient(app) as c:
        yield c
    parts.scans.close()
    parts.store.close()


def test_v1_scan_returns_the_scan_contract(client: TestClient, samples_dir: Path) -> None:
    raw = (samples_dir / "phish-credential.eml").read_bytes()
    res = client.post("/v1/scan", content=raw,
                      params={"client_ip": "192.0.2.7", "mail_from": "x@example.org",
                              "rcpt": ["a@example.net", "b@example.net"]})
    assert res.status_code == 200
    body = res.json()
    assert {"id", "category", "action", "score", "decided_by", "findings", "versions",
            "elapsed_ms"} <= body.keys()
    assert body["category"].startswith("phish")
    assert body["envelope"]["client_ip"] == "192.0.2.7"
    assert set(body["recipients"]) == {"a@example.net", "b@example.net"}


def test_checkv2_speaks_rspamd(client: TestClient, samples_dir: Path) -> None:
    raw = (samples_dir / "spam-gtube.eml").read_bytes()
    res = client.post("/checkv2", content=raw, headers={
        "IP": "198.51.100.3", "Helo": "mx.example.org", "From": "offers@bulk-deals.example.com",
        "Rcpt": "user@example.net"})
    body = res.json()
    assert res.status_code == 200
    assert body["action"] == "add header"  # junk
    assert body["score"] >= body["required_score"]
    assert any(s["score"] > 0 for s in body["symbols"].values())
    clean = client.post("/checkv2", content=make_message()).json()
    assert clean["action"] == "no action"


def test_bad_requests_are_clear(client: TestClient) -> None:
    assert client.post("/v1/scan", content=b"").status_code == 400
    assert client.post("/v1/scan", content=b"x" * 200_000).status_code == 413
    res = client.post("/checkv2", content=make_message(), headers={"IP": "not-an-ip"})
    assert res.status_code == 400 and "not an IP" in res.json()["detail"]


def test_health_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    text = client.get("/metrics").text
    assert "mailsift_message_seconds_bucket" in text
    assert "mailsift_spool_depth" in text


IDNA_SUBJECT = (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: =?idna?q?h=E9llo?=\r\n"
                b"\r\nhello\r\n")


def test_a_hostile_charset_gets_a_verdict_not_a_500(client: TestClient) -> None:
    """Issue 18.2: ``charset=idna`` with one 8-bit byte raised out of the parser (500)."""
    res = client.post("/v1/scan", content=IDNA_SUBJECT)
    assert res.status_code == 200, res.text
    assert "PARSE_BAD_CHARSET_DATA" in {f["code"] for f in res.json()["findings"]}
    res = client.post("/checkv2", content=IDNA_SUBJECT)
    assert res.status_code == 200, res.text
    assert "action" in res.json()


def test_checkv2_reads_and_answers_zstd_like_rspamc_z(client: TestClient,
                                                      samples_dir: Path) -> None:
    """Issue 18.9: ``rspamc -z`` sends the message zstd-compressed with ``Compression: zstd``
    and reads a compressed reply; the compressed bytes had been scanned as the message."""
    import json

    import zstandard

    raw = (samples_dir / "phish-credential.eml").read_bytes()
    plain = client.post("/checkv2", content=raw).json()
    res = client.post("/checkv2", content=zstandard.ZstdCompressor().compress(raw),
                      headers={"Compression": "zstd"})
    assert res.status_code == 200, res.text
    assert res.headers["compression"] == "zstd"
    body = json.loads(zstandard.ZstdDecompressor().decompress(res.content))
    assert body["action"] == plain["action"] and body["symbols"].keys() == plain["symbols"].keys()
    bad = client.post("/checkv2", content=b"not zstd at all", headers={"Compression": "zstd"})
    assert bad.status_code == 400
    bomb = zstandard.ZstdCompressor().compress(b"\0" * 200_000)  # over max_bytes (100,000)
    assert client.post("/checkv2", content=bomb,
                       headers={"Compression": "zstd"}).status_code == 413


def test_checkv2_answers_get_like_rspamd(client: TestClient) -> None:
    """``rspamc -E`` (an empty message) sends ``GET /checkv2``: answered, not 405."""
    res = client.get("/checkv2")
    assert res.status_code == 200, res.text
    assert res.json()["action"] in ("no action", "add header")
