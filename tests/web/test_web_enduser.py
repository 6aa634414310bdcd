"""The recipient pages without a password (issue 22): digest action links (a GET changes
nothing, a POST acts once, refused links get a page that says why) and sign-in links mailed to
the recipient's own address (the same answer for every address, one use, rate-limited). Also
the quarantine policy at the API's and the console's door: a recipient cannot download mail
quarantined as malware."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mailsift.config.schema import Settings
from mailsift.core.verdict import Category
from mailsift.interfaces.http.app import create_app
from mailsift.interfaces.web import build_web_router
from mailsift.services.access import Principal
from mailsift.services.digests import DigestService
from mailsift.services.store_services import StoreServices
from mailsift.store import Recordable
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink
from mailsift.testing.storekit import make_result

pytestmark = pytest.mark.usefixtures("fast_passwords")
BOB, CAROL = "bob@corp.example", "carol@corp.example"
_LINK = re.compile(r"https?://[^/\s]+(/q/(\w+)/[^?\s]+)\?t=([\w.-]+)")


def hold(services: StoreServices, msg_id: str, category: Category,
         recipients: tuple[str, ...]) -> None:
    raw = make_message(message_id=f"<{msg_id}@example.org>", subject=f"Subject {msg_id}")
    res = make_result(msg_id, raw, recipients=recipients, category=category,
                      subject=f"Subject {msg_id}")
    services.store.trace.record_many([Recordable(res, raw, received_at=time.time() - 60)])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with SmtpSink() as sink:
        settings = Settings.model_validate({
            "store": {"data_dir": str(tmp_path / "data"), "release_port": sink.port},
            "scan": {"offline": True},
            "enduser": {"self_service": {"per_address_per_hour": 2}},
        })
        services = StoreServices.open(settings)
        hold(services, "sp1", Category.SPAM, (BOB, CAROL))
        hold(services, "mal1", Category.MALWARE, (BOB,))
        app = FastAPI()
        app.include_router(build_web_router(services, settings=settings))
        try:
            with TestClient(app, follow_redirects=False) as client:
                yield {"client": client, "sink": sink, "services": services,
                       "settings": settings}
        finally:
            services.close()


def _links(site: dict[str, Any], rcpt: str) -> dict[str, tuple[str, str]]:
    svc = DigestService(site["services"].store, site["settings"])
    (digest,) = [d for d in svc.preview() if d.recipient == rcpt]
    return {m.group(2): (m.group(1), m.group(3)) for m in _LINK.finditer(digest.text)}


def test_a_link_is_confirmed_once(site: dict[str, Any]) -> None:
    client, sink = site["client"], site["sink"]
    path, token = _links(site, BOB)["release"]
    page = client.get(path, params={"t": token})
    assert page.status_code == 200 and 'method="post"' in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert "Subject sp1" in page.text and len(sink) == 0
    done = client.post(path, data={"t": token})
    assert done.status_code == 200 and "released to your inbox" in done.text
    assert sink.wait_for(1) and sink.messages[0].rcpt_to == (BOB,)
    replay = client.post(path, data={"t": token})
    assert replay.status_code == 410 and "already used" in replay.text
    assert len(sink) == 1


def test_security_refused_links_say_why_and_change_nothing(site: dict[str, Any]) -> None:
    client, sink = site["client"], site["sink"]
    path, token = _links(site, BOB)["release"]
    payload, mac = token.split(".")
    cases = [
        (path, f"{payload}.{mac[::-1]}", 400, "changed after it was sent"),
        (path, "nonsense", 400, "not complete"),
        (path.replace("sp1", "mal1"), token, 400, "another message"),
        (path.replace("/release/", "/notjunk/"), token, 400, "another action"),
    ]
    for url, tok, status, words in cases:
        for answer in (client.get(url, params={"t": tok}), client.post(url, data={"t": tok})):
            assert answer.status_code == status and words in answer.text, (url, answer.text)
    expired = DigestService(site["services"].store, site["settings"]).signer.make(
        "release", "sp1", BOB, time.time() - 1)
    answer = client.post(path, data={"t": expired})
    assert answer.status_code == 410 and "expired" in answer.text
    assert len(sink) == 0
    rec = site["services"].store.trace.get("sp1")
    assert {r.status for r in rec.recipients} == {"quarantined"}


def test_a_sign_in_link_reveals_nothing_and_works_once(site: dict[str, Any]) -> None:
    client, sink = site["client"], site["sink"]

    def ask(address: str) -> str:
        form = client.get("/signin/link")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        answer = client.post("/signin/link", data={"csrf": csrf, "address": address})
        assert answer.status_code == 200
        return re.sub(re.escape(address), "ADDR", answer.text)

    # the same page for a known and an unknown address; only the known one gets mail
    assert ask(BOB) == ask("nobody@corp.example")
    assert sink.wait_for(1)
    time.sleep(0.5)
    assert [m.rcpt_to for m in sink.messages] == [(BOB,)]
    link = re.search(r"https?://[^/\s]+(/q/signin/-)\?t=([\w.-]+)", sink.messages[0].data.decode())
    assert link is not None
    path, token = link.groups()
    assert client.get(path, params={"t": token}).status_code == 200  # pre-fetch: no session
    signed = client.post(path, data={"t": token})
    assert signed.status_code == 303 and signed.headers["location"] == "/quarantine"
    page = client.get("/quarantine")
    assert page.status_code == 200 and "Subject sp1" in page.text and BOB in page.text
    assert client.post(path, data={"t": token}).status_code == 410
    # the console applies the quarantine policy too: spam yes, malware's original never
    assert client.get("/quarantine/sp1/eml").status_code == 200
    refused = client.get("/quarantine/mal1/eml")
    assert refused.status_code == 403 and "malware" in refused.text
    # rate limit: two links an hour for an address here; the third is not sent
    ask(BOB)
    ask(BOB)
    time.sleep(1.0)
    assert len(sink) == 2
    audit = [e.detail.get("outcome") for e in site["services"].store.audit.entries()
             if e.action == "web.magic_link.request"]
    assert sorted(audit) == ["sent", "sent", "throttled", "unknown"]


def test_security_the_api_refuses_a_recipient_the_malware_original(
        site: dict[str, Any]) -> None:
    services: StoreServices = site["services"]
    token, _ = services.tokens.create(Principal("root", "admin"), "recipient", subject=BOB)
    with TestClient(create_app(services)) as api:
        auth = {"Authorization": f"Bearer {token}"}
        assert api.get("/v1/quarantine/sp1/eml", headers=auth).status_code == 200
        refused = api.get("/v1/quarantine/mal1/eml", headers=auth)
        assert refused.status_code == 403 and "malware" in refused.text


def test_browser_digest_landing_page(browser: Any, console: Any, tmp_path: Path) -> None:
    """Debian's Chromium: the link opens a page that asks, the button releases, the same link
    then shows that it was used; a forged link shows the refusal page."""
    from web_support import screenshot

    hold(console.services, "browser-sp1", Category.SPAM, ("dana@corp.example",))
    svc = DigestService(console.store, console.settings)
    (digest,) = svc.preview(recipient="dana@corp.example")
    links = {m.group(2): (m.group(1), m.group(3)) for m in _LINK.finditer(digest.text)}
    path, token = links["release"]
    before = len(console.sink)
    context = browser.new_context(base_url=console.url)
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        page.goto(f"{path}?t={token}")
        assert page.locator("h1").inner_text().startswith("Release this message")
        assert "Subject browser-sp1" in page.content()
        screenshot(page, "digest-landing", tmp_path)
        assert len(console.sink) == before  # opening the link released nothing
        page.click("#link-confirm")
        page.wait_for_selector("#link-done")
        assert "released to your inbox" in page.inner_text("#link-page")
        assert console.sink.wait_for(before + 1)
        page.goto(f"{path}?t={token}")
        page.wait_for_selector("#link-refused")
        assert "already used" in page.inner_text("#link-page")
        page.goto(f"{path}?t={token[:-3]}xyz")
        assert "changed after it was sent" in page.inner_text("#link-page")
    finally:
        context.close()
    assert len(console.sink) == before + 1
