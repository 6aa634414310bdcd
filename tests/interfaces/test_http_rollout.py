"""/v1/rollout and /v1/incidents over HTTP, with API tokens and roles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mailsift.config.schema import Settings
from mailsift.interfaces.http.app import create_app
from mailsift.interfaces.http.routes_rollout import router
from mailsift.services.rollout import RolloutService
from mailsift.services.store_services import StoreServices

PACK = """[pack]
name = "site"
description = "site rules"
default_state = "active"

[[rule]]
id = "SITE_ZULU"
description = "Mentions zulu"
category = "spam"
weight = 1.0
body = '/zulu/'
"""


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    settings = Settings.model_validate({"store": {"data_dir": str(tmp_path)}})
    services = StoreServices.open(settings)
    app = create_app(services, routers=[router])
    app.state.rollout = RolloutService(services.store, settings)
    admin = services.store.tokens.create("admin", name="ops")[0]
    analyst = services.store.tokens.create("analyst", name="ana")[0]
    with TestClient(app) as client:
        yield (client, {"Authorization": f"Bearer {admin}"},
               {"Authorization": f"Bearer {analyst}"})
    services.close()


def test_stage_promote_status_with_roles(api: tuple[TestClient, dict[str, str],
                                                    dict[str, str]]) -> None:
    client, admin, analyst = api
    assert client.get("/v1/rollout").status_code == 401
    res = client.post("/v1/rollout/stage", content=PACK,
                      headers={**analyst, "Content-Type": "application/toml"})
    assert res.status_code == 403  # analysts may read, not change
    res = client.post("/v1/rollout/stage", content=PACK,
                      headers={**admin, "Content-Type": "application/toml"})
    assert res.status_code == 200 and res.json()["state"] == "shadow"
    refused = client.post("/v1/rollout/site/promote", json={"to": "active"}, headers=admin)
    assert refused.status_code == 400 and "gate has not run" in refused.json()["detail"]
    forced = client.post("/v1/rollout/site/promote",
                         json={"to": "active", "force": True, "reason": "test"}, headers=admin)
    assert forced.status_code == 200 and forced.json()["state"] == "active"
    status = client.get("/v1/rollout", headers=analyst).json()
    assert status["deployments"][0]["state"] == "active"
    assert status["alerts"][0]["kind"] == "forced_promotion"
    res = client.put("/v1/rollout/rules/SITE_ZULU", json={"state": "shadow"}, headers=admin)
    assert res.status_code == 200
    assert client.get("/v1/rollout", headers=admin).json()["rules"]["SITE_ZULU"]["state"] == \
        "shadow"
    # nothing earlier to return to: a clear 400, not a silent no-op
    undone = client.post("/v1/rollout/site/rollback", params={"reason": "r"}, headers=admin)
    assert undone.status_code == 400 and "no earlier version" in undone.json()["detail"]
    # issue 24: and without a reason, never
    unexplained = client.post("/v1/rollout/site/rollback", headers=admin)
    assert unexplained.status_code == 400 and "reason" in unexplained.json()["detail"]
    assert client.get("/v1/incidents", headers=admin).json() == []
    assert client.get("/v1/incidents/nope", headers=admin).status_code == 404


def test_issue17_11_bad_rollout_input_is_refused_with_400(
        api: tuple[TestClient, dict[str, str], dict[str, str]]) -> None:
    client, admin, _ = api
    client.post("/v1/rollout/stage", content=PACK,
                headers={**admin, "Content-Type": "application/toml"})
    res = client.put("/v1/rollout/rules/SITE_ZULU", json={"state": "bogus"}, headers=admin)
    assert res.status_code == 400 and "bogus" in res.json()["detail"]
    res = client.put("/v1/rollout/rules/NO_SUCH_RULE", json={"state": "shadow"}, headers=admin)
    assert res.status_code == 400 and "NO_SUCH_RULE" in res.json()["detail"]
    for percent in (500, -1):
        res = client.post("/v1/rollout/site/promote", headers=admin, json={
            "to": "canary", "percent": percent, "force": True, "reason": "test"})
        assert res.status_code == 400 and "percent" in res.json()["detail"]
    res = client.post("/v1/rollout/site/promote", headers=admin,
                      json={"to": "canary", "force": True, "reason": "test"})
    assert res.status_code == 400 and "scope" in res.json()["detail"]
    for kind, value in (("", "vendor.example"), ("bogus", "vendor.example"),
                        ("domain", ""), ("sender", "not-an-address")):
        res = client.post("/v1/incidents/INC-1/allow", headers=admin,
                          json={"kind": kind, "value": value, "hours": 2})
        assert res.status_code in (400, 404), (kind, value, res.status_code)
    # nothing was written by any of the refused calls
    status = client.get("/v1/rollout", headers=admin).json()
    site = next(d for d in status["deployments"] if d["artifact"] == "rules:site")
    assert status["rules"] == {} and site["state"] == "shadow"


def test_issue17_4_withdraw_and_retire_over_http(
        api: tuple[TestClient, dict[str, str], dict[str, str]]) -> None:
    client, admin, analyst = api
    client.post("/v1/rollout/stage", content=PACK,
                headers={**admin, "Content-Type": "application/toml"})
    res = client.post("/v1/rollout/site/promote", headers=admin, json={
        "to": "canary", "domains": ["pilot.example"], "force": True, "reason": "pilot"})
    assert res.status_code == 200 and res.json()["state"] == "canary"
    assert client.post("/v1/rollout/site/withdraw", json={}, headers=analyst).status_code == 403
    res = client.post("/v1/rollout/site/withdraw", json={"reason": "complaints"}, headers=admin)
    assert res.status_code == 200 and res.json()["state"] == "shadow"
    # a shadow version cannot be withdrawn further, but it can be retired
    assert client.post("/v1/rollout/site/withdraw", json={}, headers=admin).status_code == 400
    # issue 24: retiring needs a reason
    unexplained = client.post("/v1/rollout/site/retire", json={"reason": " "}, headers=admin)
    assert unexplained.status_code == 400 and "reason" in unexplained.json()["detail"]
    res = client.post("/v1/rollout/site/retire", json={"reason": "not needed"}, headers=admin)
    assert res.status_code == 200 and res.json()["state"] == "retired"
    site = [d for d in client.get("/v1/rollout", headers=admin).json()["deployments"]
            if d["artifact"] == "rules:site"]
    assert [d["state"] for d in site] == ["retired"]
