"""``/v1/users``: console accounts over the REST API (admin tokens only)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mailsift.interfaces.http import create_app
from mailsift.services.access import Principal
from mailsift.services.store_services import StoreServices
from mailsift.store import Store

ROOT = Principal("root", "admin")
SECRET = "a long secret phrase"

pytestmark = pytest.mark.usefixtures("fast_passwords")


@pytest.fixture
def api(store: Store) -> Iterator[tuple[TestClient, StoreServices]]:
    svc = StoreServices.build(store)
    with TestClient(create_app(svc)) as client:
        yield client, svc


def _auth(svc: StoreServices, role: str, subject: str | None = None) -> dict[str, str]:
    token, _ = svc.tokens.create(ROOT, role, name=role, subject=subject)
    return {"Authorization": f"Bearer {token}"}


def test_an_admin_token_manages_users(api: tuple[TestClient, StoreServices]) -> None:
    client, svc = api
    h = _auth(svc, "admin")
    assert "/v1/users/{username}/password" in client.get("/openapi.json").json()["paths"]
    r = client.post("/v1/users", headers=h, json={"username": "Ops", "role": "admin",
                                                  "password": SECRET})
    assert r.status_code == 201 and r.json()["username"] == "ops"
    assert SECRET not in r.text and "password" not in r.json()
    r = client.post("/v1/users", headers=h, json={
        "username": "ann", "role": "recipient", "mailbox": "ann@corp.example",
        "password": SECRET})
    assert r.status_code == 201 and r.json()["mailbox"] == "ann@corp.example"
    assert client.post("/v1/users", headers=h, json={
        "username": "eve", "role": "analyst", "password": "short"}).status_code == 400
    assert client.post("/v1/users", headers=h, json={
        "username": "ops", "role": "analyst", "password": SECRET}).status_code == 409
    r = client.post("/v1/users", headers=h, json={  # no role: the answer names the field only
        "username": "eve", "password": SECRET})       # (FastAPI's own echoes the whole body)
    assert r.status_code == 422 and SECRET not in r.text
    assert ["body", "role"] in [e["loc"] for e in r.json()["detail"]]
    svc.store.users.start_session("ann")
    listed = client.get("/v1/users", headers=h).json()
    assert [(u["username"], u["role"], u["sessions"]) for u in listed] == [
        ("ann", "recipient", 1), ("ops", "admin", 0)]
    r = client.post("/v1/users/ann/disable", headers=h)
    assert r.status_code == 200 and r.json()["disabled"] and r.json()["sessions_ended"] == 1
    assert client.post("/v1/users/ann/enable", headers=h).json()["disabled"] is False
    r = client.put("/v1/users/ann/password", headers=h, json={"password": "new " + SECRET})
    assert r.status_code == 200 and SECRET not in r.text
    assert svc.store.users.authenticate("ann", "new " + SECRET) is not None
    r = client.put("/v1/users/ann/role", headers=h, json={"role": "analyst"})
    assert (r.json()["role"], r.json()["mailbox"]) == ("analyst", None)
    svc.store.users.start_session("ann")
    assert client.delete("/v1/users/ann/sessions", headers=h).json() == {
        "username": "ann", "sessions_ended": 1}
    # the only enabled admin stays one; unknown users are 404
    assert client.post("/v1/users/ops/disable", headers=h).status_code == 409
    r = client.put("/v1/users/ops/role", headers=h, json={"role": "analyst"})
    assert r.status_code == 409 and "last enabled admin" in r.json()["detail"]
    assert client.get("/v1/users/nobody", headers=h).status_code == 404
    actions = [(e.actor, e.action) for e in svc.store.audit.entries() if e.action[:5] == "user."]
    assert ("token:admin", "user.create") in actions and len(actions) == 7
    assert all(SECRET not in str(e.detail) for e in svc.store.audit.entries())


def test_other_roles_and_anonymous_callers_are_refused(
        api: tuple[TestClient, StoreServices]) -> None:
    client, svc = api
    svc.users.create(ROOT, "ops", SECRET, "admin")
    assert client.get("/v1/users").status_code == 401
    for h in (_auth(svc, "analyst"), _auth(svc, "recipient", "ann@corp.example")):
        assert client.get("/v1/users", headers=h).status_code == 403
        assert client.post("/v1/users", headers=h, json={
            "username": "eve", "role": "admin", "password": SECRET}).status_code == 403
        assert client.post("/v1/users/ops/disable", headers=h).status_code == 403
        assert client.put("/v1/users/ops/password", headers=h,
                          json={"password": SECRET + "!"}).status_code == 403
    assert [u.username for u in svc.store.users.list()] == ["ops"]
    assert svc.users.get(ROOT, "ops").user.disabled is False
