"""Users and sign-in throttling in a real browser: an admin creates a user who then signs in,
disables it (its session ends at once), lifts a lockout with a new password; other roles get no
Users page; repeated wrong passwords are throttled even when the right one finally comes.

The console here needs no mail: an empty store with three users, served like the other
console tests (uvicorn in a thread, Debian's Chromium through Playwright).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from web_support import PASSWORD, login, screenshot, serve

from mailsift.config.schema import Settings
from mailsift.services.store_services import StoreServices
from mailsift.store import Store
from mailsift.testing.store_fixtures import cheap_hashing


@dataclass
class Site:
    url: str
    store: Store


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from fastapi import FastAPI

    from mailsift.interfaces.web import build_web_router

    tmp = tmp_path_factory.mktemp("users-console")
    settings = Settings.model_validate({
        "store": {"data_dir": str(tmp / "data")},
        "http": {"login_throttle": {"user_attempts": 3, "address_attempts": 100}},
    })
    with pytest.MonkeyPatch.context() as mp:
        cheap_hashing(mp)
        services = StoreServices.open(settings)
        for name, role, mailbox in (("admin", "admin", None), ("analyst", "analyst", None),
                                    ("ann", "recipient", "ann@example.net"),
                                    ("carol", "analyst", None)):
            services.store.users.create(name, PASSWORD, role, mailbox=mailbox)
        app = FastAPI()
        app.include_router(build_web_router(services, settings=settings))
        try:
            with serve(app) as url:
                yield Site(url, services.store)
        finally:
            services.close()


@pytest.fixture
def page_for(browser: Any, site: Site) -> Iterator[Any]:
    """A page in a fresh browser context: signed in through the login form when a password is
    given, else with a session started in the store (setup, not what the test is about)."""
    contexts = []

    def make(user: str = "admin", password: str | None = None) -> Any:
        context = browser.new_context(viewport={"width": 1360, "height": 900},
                                      base_url=site.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        if password is not None:
            login(page, user, password)
        elif user:
            token, _ = site.store.users.start_session(user)
            context.add_cookies([{"name": "mailsift_session", "value": token,
                                  "url": site.url}])
        return page

    yield make
    for context in contexts:
        context.close()


def _row(page: Any, username: str) -> Any:
    return page.locator(f"#users tr[data-user='{username}']")


def test_an_admin_creates_a_user_who_then_signs_in(page_for: Any, site: Site,
                                                   tmp_path: Path) -> None:
    admin = page_for()
    admin.goto("/")
    admin.click("header nav >> text=Users")
    admin.wait_for_url(re.compile(r"/users$"))
    form = admin.locator("#create-user")
    form.locator("input[name=username]").fill("Bob@Example.net")
    form.locator("select[name=role]").select_option("recipient")
    form.locator("input[name=mailbox]").fill("bob@example.net")
    form.locator("input[name=password]").fill("bob's long password")
    form.locator("input[name=repeat]").fill("bob's long passw0rd")
    form.locator("text=Create user").click()
    assert admin.locator(".error-message").inner_text() == "the passwords do not match"
    assert "password" not in admin.url  # passwords are never in a URL
    admin.goto("/users")
    form.locator("input[name=username]").fill("Bob@Example.net")
    form.locator("select[name=role]").select_option("recipient")
    form.locator("input[name=mailbox]").fill("bob@example.net")
    form.locator("input[name=password]").fill("bob's long password")
    form.locator("input[name=repeat]").fill("bob's long password")
    form.locator("text=Create user").click()
    assert admin.locator(".flash.ok").inner_text() == (
        "created recipient bob@example.net (mailbox bob@example.net)")
    assert "bob's" not in admin.url

    bob = page_for("bob@example.net", "bob's long password")
    assert bob.url.endswith("/quarantine")  # a recipient lands on their own quarantine
    assert "bob@example.net (recipient, bob@example.net)" in bob.locator("header .who").inner_text()
    admin.goto("/users")
    row = _row(admin, "bob@example.net")
    assert row.locator("td.num").inner_text() == "1"  # one live session
    screenshot(admin, "users", tmp_path)
    row.locator("button.disable").click()
    # a confirmation first: what it does, a reason, a box that names the count
    assert admin.locator("#confirm-count").inner_text() == "1"
    assert "1 live session" in admin.locator("#confirm").inner_text()
    admin.fill("#confirm-reason", "left the company")
    admin.check("#confirm-check")
    admin.click("#confirm-action")
    assert admin.locator(".flash.ok").inner_text() == "disabled bob@example.net (1 session ended)"
    assert "disabled" in _row(admin, "bob@example.net").locator("td.state").inner_text()
    bob.goto("/quarantine")
    assert "/login" in bob.url  # the session ended with the account
    audit = [(e.actor, e.action, e.target) for e in site.store.audit.entries()]
    assert ("admin", "user.create", "bob@example.net") in audit
    assert ("admin", "user.disable", "bob@example.net") in audit
    (entry,) = [e for e in site.store.audit.entries() if e.action == "user.disable"]
    assert entry.detail["reason"] == "left the company"


def test_other_roles_get_no_users_page(page_for: Any, site: Site) -> None:
    for user in ("analyst", "ann"):
        page = page_for(user)
        assert page.locator("header nav a", has_text="Users").count() == 0
        response = page.goto("/users")
        assert response is not None and response.status == 403, user
        assert "may not users.read" in page.locator(".error-message").inner_text()
    with httpx2.Client(base_url=site.url) as client:  # a forged form is refused as well
        form = client.get("/login")
        token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        client.post("/login", data={"username": "analyst", "password": PASSWORD,
                                    "csrf": token, "next": "/"})
        csrf = client.get("/quarantine").text.split('name="csrf" value="', 1)[1].split('"')[0]
        r = client.post("/users/create", data={"csrf": csrf, "username": "eve", "role": "admin",
                                               "password": "x" * 12, "repeat": "x" * 12})
        assert r.status_code == 403
    assert site.store.users.get("eve") is None


def test_repeated_wrong_passwords_are_throttled(page_for: Any, site: Site) -> None:
    page = page_for("")
    page.goto("/login")
    for _ in range(3):
        page.fill("input[name=username]", "Carol")
        page.fill("input[name=password]", "not her password")
        page.click("button[type=submit]")
        assert page.locator(".flash.bad").inner_text() == "wrong username or password"
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", PASSWORD)  # right, but too late
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("button[type=submit]")
    # the 5-minute lockout runs from the third failure on the real clock: a busy machine may
    # take a few seconds to send the fourth attempt
    assert answer.value.status == 429 and 240 < int(answer.value.headers["retry-after"]) <= 300
    message = page.locator(".flash.bad").inner_text()
    assert message.startswith("too many failed sign-ins: try again in 5 minutes (after ")
    assert not any(c["name"] == "mailsift_session" for c in page.context.cookies())
    assert any(e.action == "web.login_throttled" and e.actor == "carol"
               for e in site.store.audit.entries())
    # an admin sees the lockout and lifts it with a new password
    admin = page_for()
    admin.goto("/users")
    row = _row(admin, "carol")
    assert "sign-in locked until" in row.locator("td.state").inner_text()
    row.locator("summary", has_text="new password").click()
    row.locator("input[name=password]").fill("carol's new password")
    row.locator("input[name=repeat]").fill("carol's new password")
    row.locator("text=Set password").click()
    assert admin.locator(".flash.ok").inner_text() == "new password for carol (0 sessions ended)"
    carol = page_for("carol", "carol's new password")
    assert carol.url.rstrip("/") == site.url  # signed in: the dashboard


def test_the_last_admin_cannot_disable_themselves(site: Site) -> None:
    with httpx2.Client(base_url=site.url) as client:
        token, session = site.store.users.start_session("admin")
        client.cookies.set("mailsift_session", token)
        r = client.post("/users/admin/disable", data={"csrf": session.csrf})
        assert r.status_code == 200 and 'id="confirm-action"' in r.text  # the preview
        r = client.post("/users/admin/disable", data={"csrf": session.csrf, "confirm": "1",
                                                       "reason": "testing"})
        assert r.status_code == 409
        assert "admin is the last enabled admin" in r.text
        r = client.post("/users/admin/role", data={"csrf": session.csrf, "role": "analyst"})
        assert r.status_code == 409
    user = site.store.users.get("admin")
    assert user is not None and not user.disabled and user.role == "admin"


def test_ending_sessions_previews_their_count_and_needs_a_reason(site: Site) -> None:
    for _ in range(2):
        site.store.users.start_session("analyst")
    live = site.store.users.session_counts()["analyst"]  # with other tests' sessions
    with httpx2.Client(base_url=site.url) as client:
        token, session = site.store.users.start_session("admin")
        client.cookies.set("mailsift_session", token)
        url, csrf = "/users/analyst/sessions/end", session.csrf
        r = client.post(url, data={"csrf": csrf})
        assert r.status_code == 200 and f'<strong id="confirm-count">{live}</strong>' in r.text
        r = client.post(url, data={"csrf": csrf, "confirm": str(live), "reason": " "})
        assert r.status_code == 400 and "a reason is required" in r.text
        assert site.store.users.session_counts().get("analyst") == live  # nothing ended
        r = client.post(url, data={"csrf": csrf, "confirm": str(live), "reason": "lost laptop"})
        assert r.status_code == 303
    assert site.store.users.session_counts().get("analyst", 0) == 0
    (entry,) = [e for e in site.store.audit.entries() if e.action == "user.sessions_end"]
    assert entry.detail == {"sessions_ended": live, "reason": "lost laptop"}
