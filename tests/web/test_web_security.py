"""Security regressions of the console: hostile HTML in the preview, CSRF, cookies, headers,
open redirects. The hostile message went through the real pipeline and store like any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
from web_support import PASSWORD, Canary, Console, screenshot

from mailsift.core.lists import ListEntry


def test_hostile_html_does_not_execute_or_load_anything(new_page: Any, console: Console,
                                                        tmp_path: Path) -> None:
    hostile = console.ids["hostile"][0]
    page = new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    Canary.hits.clear()
    page.goto(f"/quarantine/{hostile}")
    title = page.title()
    frame = page.frame_locator("#preview")
    body = frame.locator("body")
    body.wait_for()
    text = body.inner_text()
    # links are shown, not followed: the URL is text, there is no anchor to click
    assert "https://www.paypal.com/signin <http://192.0.2.55/login>" in text
    assert "click me <javascript:" in text
    assert "[image]" in text and "[form removed]" in text
    inner = page.frame(url=lambda u: u.endswith("/preview"))
    assert inner is not None
    for tag in ("script", "img", "a", "iframe", "link", "form", "input", "[style]",
                "[onerror]"):
        assert inner.locator(tag).count() == 0, tag
    frame.locator("text=click me").click()  # plain text: nothing happens
    page.wait_for_timeout(500)
    assert page.title() == title and "PWNED" not in page.title()
    assert not dialogs
    assert Canary.hits == []  # nothing reached the local server the mail points at
    assert all(u.startswith(console.url) for u in requests), requests
    screenshot(page, "preview-hostile", tmp_path)


def test_preview_is_sandboxed_with_a_strict_policy(console: Console) -> None:
    with httpx2.Client(base_url=console.url) as client:
        _login(client, "admin")
        hostile = console.ids["hostile"][0]
        page = client.get(f"/quarantine/{hostile}")
        assert 'sandbox=""' in page.text and 'id="preview"' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        preview = client.get(f"/quarantine/{hostile}/preview")
        csp = preview.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "sandbox" in csp and "img-src 'none'" in csp
        assert "<script" not in preview.text and "onerror" not in preview.text
        assert console.canary_url not in preview.text.split("</style>", 1)[1].replace(
            f"&lt;{console.canary_url}", "")  # the canary URL appears only as escaped text


def _login(client: httpx2.Client, user: str) -> str:
    form = client.get("/login")
    token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    r = client.post("/login", data={"username": user, "password": PASSWORD, "csrf": token,
                                    "next": "/"})
    assert r.status_code == 303
    page = client.get("/quarantine")
    return page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def test_every_post_needs_the_session_csrf_token(console: Console) -> None:
    message = console.ids["phish"][6]
    with httpx2.Client(base_url=console.url) as client:
        csrf = _login(client, "admin")
        for data in ({}, {"csrf": "forged"}):
            r = client.post(f"/quarantine/{message}/release", data=data)
            assert r.status_code == 403
        r = client.post("/lists/add", data={"kind": "sender", "value": "x@y.example",
                                            "action": "allow"})
        assert r.status_code == 403
        assert console.store.trace.statuses(message)["tom@example.net"] == "quarantined"
        # another user's token is no good either
        with httpx2.Client(base_url=console.url) as other:
            other_csrf = _login(other, "analyst")
        assert other_csrf != csrf
        r = client.post(f"/quarantine/{message}/delete", data={"csrf": other_csrf})
        assert r.status_code == 403


def test_login_needs_its_form_token_and_does_not_redirect_off_site(console: Console) -> None:
    with httpx2.Client(base_url=console.url) as client:
        r = client.post("/login", data={"username": "admin", "password": PASSWORD,
                                        "csrf": "x"})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert "mailsift_session" not in client.cookies
        # the banner comes in a signed cookie, shown once, never from the URL (issue 24)
        assert "the login form expired" in client.get("/login").text
        assert "the login form expired" not in client.get("/login").text
        form = client.get("/login", params={"next": "//evil.example/x"})
        assert 'value="/"' in form.text and "evil.example" not in form.text
        token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        r = client.post("/login", data={"username": "admin", "password": PASSWORD,
                                        "csrf": token, "next": "https://evil.example/"})
        assert r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie


def test_analyst_may_release_but_not_change_lists_or_rollouts(console: Console) -> None:
    with httpx2.Client(base_url=console.url) as client:
        csrf = _login(client, "analyst")
        r = client.post("/lists/add", data={"csrf": csrf, "kind": "sender",
                                            "value": "x@y.example", "action": "allow"})
        assert r.status_code == 403
        r = client.post("/rollouts/rollback", data={"csrf": csrf, "name": "finance-lures"})
        assert r.status_code == 403
        r = client.post(f"/quarantine/{console.ids['phish'][6]}/delete", data={"csrf": csrf})
        assert r.status_code == 403
        assert client.get("/audit-does-not-exist").status_code == 404


def test_logout_ends_the_session_server_side(console: Console) -> None:
    with httpx2.Client(base_url=console.url) as client:
        csrf = _login(client, "admin")
        cookie = client.cookies["mailsift_session"]
        assert client.post("/logout", data={"csrf": csrf}).status_code == 303
        with httpx2.Client(base_url=console.url, cookies={"mailsift_session": cookie}) as replay:
            r = replay.get("/quarantine")
            assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_security_the_banner_shows_only_what_the_console_said(console: Console) -> None:
    """Issue 18.10: ``/login?msg=...`` printed any text in the trusted banner (a phishing
    message on the console's own origin). Only messages the console signed are shown."""
    bait = "Your session expired: call the help desk on +1 555 0100"
    with httpx2.Client(base_url=console.url) as client:
        page = client.get("/login", params={"msg": bait, "err": bait})
        assert page.status_code == 200
        assert "help desk" not in page.text
        _login(client, "admin")
        assert "help desk" not in client.get("/quarantine", params={"msg": bait}).text


def test_issue24_destructive_posts_act_only_on_the_confirmed_count_and_a_reason(
        console: Console) -> None:
    """Every destructive console action answers its first POST with the preview; it acts only
    when the form names the count the preview showed and gives a reason. A hand-made POST that
    skips the preview, names another count or has a blank reason changes nothing."""
    store = console.store
    entry = store.lists.add(ListEntry(kind="domain", value="guard-test.example",
                                      action="block", author="setup"))
    incident = store.rollout.incidents()[0]
    v1 = store.rollout.deployments("rules", "finance-lures")[0]
    message = console.ids["phish"][5]
    actions = [  # (url, extra form fields, the count the preview must show)
        (f"/lists/{entry.entry_id}/remove", {}, 1),
        ("/rollouts/rollback", {"name": "rules:finance-lures"}, 1),
        (f"/incidents/{incident.id}/release", {}, incident.messages),
        (f"/quarantine/{message}/delete", {}, 2),
    ]
    before = (len(store.lists.entries()), store.rollout.deployments("rules", "finance-lures"),
              store.trace.statuses(message), len(console.sink))
    with httpx2.Client(base_url=console.url) as client:
        csrf = _login(client, "admin")
        for url, fields, count in actions:
            preview = client.post(url, data={"csrf": csrf, **fields})
            assert preview.status_code == 200, url
            assert f'id="confirm-count">{count}<' in preview.text, url
            for bad in ({"confirm": str(count + 1), "reason": "r"},
                        {"confirm": str(count), "reason": "  "},
                        {"confirm": str(count)}):
                r = client.post(url, data={"csrf": csrf, **fields, **bad})
                assert r.status_code == 400 and 'id="confirm-problem"' in r.text, (url, bad)
    after = (len(store.lists.entries()), store.rollout.deployments("rules", "finance-lures"),
             store.trace.statuses(message), len(console.sink))
    assert after == before and before[1][0].version == v1.version
    assert not [e for e in store.audit.entries(limit=20) if e.action in (
        "lists.remove", "rollout.rollback", "incident.release", "quarantine.delete")]
