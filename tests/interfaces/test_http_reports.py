"""``/v1/messages/{id}/reports`` and ``/v1/reports``: tokens and roles, idempotent reporting,
listing, triage with release, and the errors (404 for someone else's message, 403, 400, 422)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mailsift.core.verdict import Action
from mailsift.interfaces.http import create_app
from mailsift.services.access import Principal
from mailsift.services.store_services import StoreServices
from mailsift.store import Store
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink
from mailsift.testing.storekit import make_result, temp_store_settings

ROOT = Principal("root", "admin")
Env = tuple[TestClient, StoreServices, SmtpSink]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with SmtpSink() as sink, temp_store_settings("sqlite", tmp_path,
                                                 release_port=sink.port) as settings:
        svc = StoreServices.build(Store.open(settings))
        raw = make_message(subject="Invoice 7", message_id="<inv7@acme.example>")
        svc.store.trace.record(make_result("ms-inv", raw, recipients={
            "bob@corp.example": Action.QUARANTINE, "carol@corp.example": Action.QUARANTINE},
            from_addr="billing@acme.example"), raw)
        try:
            with TestClient(create_app(svc)) as client:
                yield client, svc, sink
        finally:
            svc.close()


def _auth(svc: StoreServices, role: str, subject: str | None = None) -> dict[str, str]:
    token, _ = svc.tokens.create(ROOT, role, subject=subject)
    return {"Authorization": f"Bearer {token}"}


def test_a_recipient_reports_and_an_analyst_triages_with_release(env: Env) -> None:
    client, svc, sink = env
    bob = _auth(svc, "recipient", "bob@corp.example")
    analyst = _auth(svc, "analyst")
    assert client.post("/v1/messages/ms-inv/reports", json={"label": "ham"}).status_code == 401
    made = client.post("/v1/messages/ms-inv/reports", headers=bob,
                       json={"label": "ham", "comment": "from our supplier",
                             "recipient": "carol@corp.example"})  # ignored for recipients
    assert made.status_code == 201, made.text
    report = made.json()
    assert report["created"] and report["mailbox"] == "bob@corp.example"
    assert report["verdict"] == {"category": "phish", "action": "quarantine", "reasons": []}
    again = client.post("/v1/messages/ms-inv/reports", headers=bob, json={"label": "ham"})
    assert again.status_code == 200 and again.json()["id"] == report["id"]
    assert not again.json()["created"]

    page = client.get("/v1/reports", headers=analyst, params={"state": "new"}).json()
    assert [r["id"] for r in page["items"]] == [report["id"]] and page["next_cursor"] is None
    assert client.get("/v1/reports", headers=analyst,
                      params={"label": "phish"}).json()["items"] == []
    assert client.get(f"/v1/reports/{report['id']}", headers=bob).json()["comment"] == \
        "from our supplier"

    done = client.post(f"/v1/reports/{report['id']}/triage", headers=analyst,
                       json={"state": "confirmed", "note": "supplier", "release": True})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["report"]["state"] == "confirmed" and body["previous"] == "new"
    assert body["release"]["sent"] == ["bob@corp.example"] and body["entry"] is None
    assert sink.wait_for(1) and sink.copies() == {("<inv7@acme.example>", "bob@corp.example"): 1}
    assert svc.store.trace.statuses("ms-inv") == {"bob@corp.example": "released",
                                                  "carol@corp.example": "quarantined"}


def test_roles_and_errors(env: Env) -> None:
    client, svc, _ = env
    eve = _auth(svc, "recipient", "eve@corp.example")
    bob = _auth(svc, "recipient", "bob@corp.example")
    analyst = _auth(svc, "analyst")
    admin = _auth(svc, "admin")
    # someone else's message looks like no message at all
    assert client.post("/v1/messages/ms-inv/reports", headers=eve,
                       json={"label": "phish"}).status_code == 404
    assert client.post("/v1/messages/ms-nope/reports", headers=admin,
                       json={"label": "phish"}).status_code == 404
    assert client.post("/v1/messages/ms-inv/reports", headers=bob,
                       json={"label": "clean"}).status_code == 422
    assert client.post("/v1/messages/ms-inv/reports", headers=bob,
                       json={"label": "spam", "comment": "x" * 2001}).status_code == 422
    rid = client.post("/v1/messages/ms-inv/reports", headers=bob,
                      json={"label": "spam"}).json()["id"]
    assert client.get("/v1/reports", headers=eve).json()["items"] == []
    assert client.get(f"/v1/reports/{rid}", headers=eve).status_code == 404
    assert client.get("/v1/reports/999", headers=analyst).status_code == 404
    assert client.post(f"/v1/reports/{rid}/triage", headers=bob,
                       json={"state": "confirmed"}).status_code == 403
    # analysts may not list; a not-junk release of a spam report is refused: nothing changes
    assert client.post(f"/v1/reports/{rid}/triage", headers=analyst,
                       json={"state": "confirmed", "list_entry": "sender"}).status_code == 403
    assert client.post(f"/v1/reports/{rid}/triage", headers=admin,
                       json={"state": "confirmed", "release": True}).status_code == 400
    assert client.get(f"/v1/reports/{rid}", headers=admin).json()["state"] == "new"
    blocked = client.post(f"/v1/reports/{rid}/triage", headers=admin,
                          json={"state": "confirmed", "list_entry": "domain"}).json()
    assert blocked["entry"]["value"] == "acme.example" and blocked["entry"]["action"] == "block"
    spec = client.get("/openapi.json").json()["paths"]
    assert {"/v1/messages/{message}/reports", "/v1/reports", "/v1/reports/{report_id}",
            "/v1/reports/{report_id}/triage"} <= set(spec)
