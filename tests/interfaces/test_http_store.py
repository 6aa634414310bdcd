"""The /v1/ store API: tokens and roles, trace, quarantine, release, lists, audit, OpenAPI."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mailsift.core.findings import Finding
from mailsift.interfaces.http import create_app
from mailsift.services.access import Principal
from mailsift.services.store_services import StoreServices
from mailsift.store import Store
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink
from mailsift.testing.storekit import make_result, pg_unavailable, temp_store_settings
from mailsift.testing.waiting import wait_until

ROOT = Principal("root", "admin")


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[TestClient,
                                                                          StoreServices,
                                                                          SmtpSink]]:
    if request.param == "postgresql" and (why := pg_unavailable()):
        pytest.skip(why)
    sink = SmtpSink().start()
    with temp_store_settings(request.param, tmp_path, release_port=sink.port) as settings:
        svc = StoreServices.build(Store.open(settings))
        rule = Finding("RULE_FP", 7.0, ("x",), "rules", "phish", artifact="rules/default",
                       version="7")
        for i in range(5):
            raw = make_message(message_id=f"<h{i}@example.org>",
                               html='<p onmouseover="x()">hi<script>evil()</script>'
                                    '<img src="http://track.example/p.gif"></p>')
            rcpts = ("bob@corp.example", "carol@corp.example")
            svc.store.trace.record(make_result(f"h{i}", raw, recipients=rcpts,
                                               findings=[rule],
                                               versions={"rules/default": "7"}), raw,
                                   received_at=time.time() - 60)
        with TestClient(create_app(svc)) as client:
            yield client, svc, sink
        svc.close()
    sink.stop()


def _auth(svc: StoreServices, role: str, subject: str | None = None) -> dict[str, str]:
    token, _ = svc.tokens.create(ROOT, role, subject=subject)
    return {"Authorization": f"Bearer {token}"}


def test_openapi_is_published(env: tuple[TestClient, StoreServices, SmtpSink]) -> None:
    client, _, _ = env
    spec = client.get("/openapi.json").json()
    assert "/v1/quarantine/release" in spec["paths"]
    assert "/v1/trace" in spec["paths"]


def test_tokens_are_required_and_checked(env: tuple[TestClient, StoreServices,
                                                    SmtpSink]) -> None:
    client, svc, _ = env
    assert client.get("/v1/trace").status_code == 401
    assert client.get("/v1/trace", headers={"Authorization": "Bearer nope"}).status_code == 401
    token, info = svc.tokens.create(ROOT, "analyst")
    ok = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/whoami", headers=ok).json()["role"] == "analyst"
    svc.tokens.revoke(ROOT, info.id)
    assert client.get("/v1/whoami", headers=ok).status_code == 401


def test_analyst_reads_and_releases_but_cannot_administer(
        env: tuple[TestClient, StoreServices, SmtpSink]) -> None:
    client, svc, sink = env
    h = _auth(svc, "analyst")
    page = client.get("/v1/trace", params={"finding": "RULE_FP", "limit": 3}, headers=h).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    more = client.get("/v1/trace", params={"finding": "RULE_FP", "cursor": page["next_cursor"]},
                      headers=h).json()
    assert len(more["items"]) == 7
    assert client.get("/v1/trace/count", params={"artifact": "rules/default", "version": "7"},
                      headers=h).json() == {"recipients": 10, "messages": 5}
    shown = client.get("/v1/quarantine/h1", headers=h).json()
    assert "<script" not in shown["preview_html"] and "onmouseover" not in shown["preview_html"]
    assert "track.example" not in shown["preview_html"]
    r = client.post("/v1/quarantine/h1/release", json={"recipients": ["bob@corp.example"]},
                    headers=h)
    assert r.status_code == 200 and r.json()["sent"] == ["bob@corp.example"]
    assert client.delete("/v1/quarantine/h2", headers=h).status_code == 403
    assert client.post("/v1/lists", json={"kind": "domain", "value": "x.example",
                                          "action": "block"}, headers=h).status_code == 403
    assert client.get("/v1/audit", headers=h).status_code == 403
    assert len(sink.messages) == 1


def test_recipient_sees_only_own_quarantine(env: tuple[TestClient, StoreServices,
                                                       SmtpSink]) -> None:
    client, svc, sink = env
    h = _auth(svc, "recipient", "bob@corp.example")
    items = client.get("/v1/quarantine", headers=h).json()["items"]
    assert {i["recipient"] for i in items} == {"bob@corp.example"} and len(items) == 5
    shown = client.get("/v1/quarantine/h0", headers=h).json()
    assert shown["envelope"]["rcpt_to"] == ["bob@corp.example"]
    eml = client.get("/v1/quarantine/h0/eml", headers=h)
    assert eml.status_code == 200 and b"<h0@example.org>" in eml.content
    assert eml.headers["content-type"].startswith("message/rfc822")
    assert client.get("/v1/trace", headers=h).status_code == 403
    assert client.post("/v1/quarantine/h0/release", json={}, headers=h).status_code == 403
    req = client.post("/v1/quarantine/h0/requests",
                      json={"recipient": "carol@corp.example", "reason": "mine"}, headers=h)
    assert req.status_code == 201 and req.json()["recipient"] == "bob@corp.example"
    # carol's token cannot see bob's requests, and an unknown mailbox sees nothing
    other = _auth(svc, "recipient", "eve@corp.example")
    assert client.get("/v1/quarantine/h0", headers=other).status_code == 404
    assert client.get("/v1/requests", headers=other).json() == []
    admin = _auth(svc, "admin")
    rid = req.json()["id"]
    approved = client.post(f"/v1/requests/{rid}/approve", json={"note": "ok"}, headers=admin)
    assert approved.json()["release"]["sent"] == ["bob@corp.example"]
    assert client.post(f"/v1/requests/{rid}/deny", json={}, headers=admin).status_code == 409
    assert [m.rcpt_to for m in sink.messages] == [("bob@corp.example",)]


def test_bulk_release_dry_run_then_job(env: tuple[TestClient, StoreServices,
                                                  SmtpSink]) -> None:
    client, svc, sink = env
    h = _auth(svc, "analyst")
    body = {"query": {"finding": "RULE_FP", "version": "7"}}
    dry = client.post("/v1/quarantine/release", json=body, headers=h)
    assert dry.status_code == 200 and dry.json()["recipients"] == 10
    assert client.post("/v1/quarantine/release", json={"query": {}, "dry_run": False},
                       headers=h).status_code == 400
    # issue 24: a release needs a reason, and a count confirmed by the dry run must still hold
    unexplained = client.post("/v1/quarantine/release", json={**body, "dry_run": False},
                              headers=h)
    assert unexplained.status_code == 400 and "reason" in unexplained.json()["detail"]
    stale = client.post("/v1/quarantine/release", json={
        **body, "dry_run": False, "reason": "false positive", "confirm_count": 11}, headers=h)
    assert stale.status_code == 400 and "now matches 10" in stale.json()["detail"]
    started = client.post("/v1/quarantine/release", json={
        **body, "dry_run": False, "reason": "false positive", "confirm_count": 10}, headers=h)
    assert started.status_code == 202
    job_id = started.json()["job"]["id"]

    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/release-jobs/{job_id}", headers=h).json()
        return job if job["state"] == "done" else None

    job = wait_until(finished, timeout=30, what=f"release job {job_id} to finish")
    assert job["sent"] == 10
    assert job["ledger"] == {"sent": 10}
    again = client.post("/v1/quarantine/release", json=body, headers=h).json()
    assert again["recipients"] == 0 and again["already_released"] == 10
    assert len(sink.deliveries()) == 10


def test_issue24_deleting_an_original_needs_a_reason(
        env: tuple[TestClient, StoreServices, SmtpSink]) -> None:
    client, svc, _ = env
    h = _auth(svc, "admin")
    for refused in ({}, {"reason": ""}, {"reason": "   "}):
        r = client.delete("/v1/quarantine/h2", params=refused, headers=h)
        assert r.status_code == 400 and "needs a reason" in r.json()["detail"]
    assert set(svc.store.trace.statuses("h2").values()) == {"quarantined"}  # nothing done
    r = client.delete("/v1/quarantine/h2", params={"reason": "known campaign"}, headers=h)
    assert r.status_code == 200 and r.json()["recipients"] >= 1
    entry = svc.store.audit.entries(action="quarantine.delete", limit=1)[0]
    assert entry.detail["reason"] == "known campaign"


def test_lists_and_audit_for_admin(env: tuple[TestClient, StoreServices, SmtpSink]) -> None:
    client, svc, _ = env
    h = _auth(svc, "admin")
    made = client.post("/v1/lists", json={"kind": "ip", "value": "192.0.2.0/24",
                                          "action": "block", "note": "botnet"}, headers=h)
    assert made.status_code == 201 and made.json()["author"].startswith("token:")
    bad = client.post("/v1/lists", json={"kind": "ip", "value": "nope", "action": "block"},
                      headers=h)
    assert bad.status_code == 400
    snap = client.get("/v1/lists/snapshot", headers=h).json()
    assert snap["version"] != "empty" and len(snap["entries"]) == 1
    entry = f"/v1/lists/{made.json()['id']}"
    # issue 24: a removal needs a reason (audited)
    assert client.delete(entry, headers=h).status_code == 400
    assert client.delete(entry, params={"reason": "  "}, headers=h).status_code == 400
    assert client.delete(entry, params={"reason": "ended"}, headers=h).status_code == 200
    assert client.delete(entry, params={"reason": "ended"}, headers=h).status_code == 404
    actions = [e["action"] for e in client.get("/v1/audit", headers=h).json()]
    assert actions[:2] == ["lists.remove", "lists.add"]
    wide = {"kind": "domain", "value": "gmail.com", "action": "allow"}
    refused = client.post("/v1/lists", json=wide, headers=h)
    assert refused.status_code == 400
    assert "is wide: it would act on mail of every sender at gmail.com" in refused.text
    forced = client.post("/v1/lists", json={**wide, "force": True, "reason": "INC-9"},
                         headers=h)
    assert forced.status_code == 201
    assert client.get("/v1/audit", headers=h).json()[0]["action"] == "lists.force"
    assert svc.store.rollout.alerts()[0].kind == "forced_list_entry"
    hold = client.post("/v1/holds", json={"name": "INC-7", "query": {"message": "h3"}},
                       headers=h)
    assert hold.status_code == 201 and hold.json()["messages"] == 1
    assert client.delete("/v1/quarantine/h3", params={"reason": "campaign"},
                         headers=h).status_code == 409


def test_security_a_recipient_cannot_download_malware(
        env: tuple[TestClient, StoreServices, SmtpSink]) -> None:
    """Issue 18.10: a recipient could download the original of a message quarantined as
    malware (the payload itself); staff still can, audited."""
    from mailsift.core.verdict import Category

    client, svc, _ = env
    raw = make_message(message_id="<mal@example.org>", text="see attached")
    virus = Finding("ATT_BLOCKED_TYPE", 1.0, ("invoice.exe",), "attachments", "malware")
    svc.store.trace.record(make_result("mal", raw, recipients=("bob@corp.example",),
                                       category=Category.MALWARE, findings=[virus]), raw)
    bob = _auth(svc, "recipient", "bob@corp.example")
    assert client.get("/v1/quarantine/mal", headers=bob).status_code == 200  # may look
    assert client.get("/v1/quarantine/mal/eml", headers=bob).status_code == 403
    assert client.get("/v1/quarantine/h0/eml", headers=bob).status_code == 200  # phish: yes
    assert client.get("/v1/quarantine/mal/eml", headers=_auth(svc, "admin")).status_code == 200


@pytest.mark.parametrize("path", ["/v1/reports/9223372036854775808",
                                  "/v1/release-jobs/99999999999999999999",
                                  "/v1/audit?before_id=9223372036854775808",
                                  "/v1/reports/-9223372036854775809"])
def test_security_an_id_out_of_range_is_not_a_500(
        env: tuple[TestClient, StoreServices, SmtpSink], path: str) -> None:
    client, svc, _ = env
    res = client.get(path, headers=_auth(svc, "admin"))
    assert res.status_code in (404, 422), res.text
    assert "Traceback" not in res.text


def test_security_api_docs_do_not_load_scripts_from_a_cdn_by_default(
        env: tuple[TestClient, StoreServices, SmtpSink]) -> None:
    client, _, _ = env
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").status_code == 200


def test_trace_search_lookups_sort_and_paging_back(
        env: tuple[TestClient, StoreServices, SmtpSink]) -> None:
    client, svc, _ = env
    h = _auth(svc, "analyst")

    def refs(**params: Any) -> list[str]:
        r = client.get("/v1/trace", params=params, headers=h)
        assert r.status_code == 200, r.text
        return sorted({i["message"] for i in r.json()["items"]})

    assert refs(recipient="carol@") == [f"h{i}" for i in range(5)]
    assert refs(sender="ALICE") == [f"h{i}" for i in range(5)]  # part of the From address
    assert refs(message_id="<H3@example.org>") == ["h3"]
    assert refs(ref="h2") == ["h2"]
    assert refs(client_ip="192.0.2.10") == [f"h{i}" for i in range(5)]
    assert refs(client_ip="192.0.2.11") == []
    bad = client.get("/v1/trace", params={"client_ip": "nope"}, headers=h)
    assert bad.status_code == 400 and "not an IP address" in bad.text
    assert client.get("/v1/trace", params={"sort": "secret"}, headers=h).status_code == 400
    first = client.get("/v1/trace", params={"limit": 4, "sort": "recipient", "order": "asc"},
                       headers=h).json()
    assert first["prev_cursor"] is None
    assert [i["recipient"] for i in first["items"]] == ["bob@corp.example"] * 4
    second = client.get("/v1/trace", params={"limit": 4, "sort": "recipient", "order": "asc",
                                             "cursor": first["next_cursor"]}, headers=h).json()
    back = client.get("/v1/trace", params={"limit": 4, "sort": "recipient", "order": "asc",
                                           "cursor": second["prev_cursor"]}, headers=h).json()
    assert [i["id"] for i in back["items"]] == [i["id"] for i in first["items"]]


def test_trace_export_streams_csv_and_is_audited(
        env: tuple[TestClient, StoreServices, SmtpSink]) -> None:
    client, svc, _ = env
    with client.stream("GET", "/v1/trace/export", params={"format": "csv",
                                                          "recipient": "@corp.example"},
                       headers=_auth(svc, "analyst")) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert "content-length" not in r.headers
        lines = b"".join(r.iter_bytes()).decode().splitlines()
    assert lines[0].startswith("received,reference,recipient")
    assert len(lines) == 11
    (entry,) = svc.store.audit.entries(action="trace.export")
    assert entry.detail["rows"] == 10 and entry.detail["format"] == "csv"
    denied = client.get("/v1/trace/export", headers=_auth(svc, "recipient", "bob@corp.example"))
    assert denied.status_code == 403
    assert len(svc.store.audit.entries(action="trace.export")) == 1


def test_trace_record_has_the_delivery_attempts(
        env: tuple[TestClient, StoreServices, SmtpSink]) -> None:
    from mailsift.store.deliveries import Attempt, DeliveryLog

    client, svc, _ = env
    DeliveryLog(svc.store.engine).add("h1", [
        Attempt("bob@corp.example", 5.0, "failed", "550 5.7.1 relaying denied")])
    rec = client.get("/v1/trace/h1", headers=_auth(svc, "analyst")).json()
    assert rec["deliveries"] == [{"recipient": "bob@corp.example", "at": 5.0,
                                  "outcome": "failed", "code": 550,
                                  "reply": "550 5.7.1 relaying denied", "attempt": 1,
                                  "next_try_at": None}]
