"""Support of the console tests (fixtures: conftest.py). The console under test: a temp
SQLite store filled by real scans, the console served by
uvicorn on a free port in a thread, a local SMTP sink as the release next hop, and Debian's
Chromium driven by Playwright (never ``playwright install``: the system browser is used).

Fixtures are module-scoped where starting things is slow (the server, the browser); each test
gets a fresh browser context (no cookies), so tests do not depend on each other's sessions.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mailsift.config.schema import Settings
from mailsift.core.envelope import Connection, Envelope
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.rollout.breaker import Trip
from mailsift.services.access import Principal
from mailsift.services.gateway import message_ref
from mailsift.services.rollout import RolloutService
from mailsift.services.store_services import StoreServices
from mailsift.store.users import UserStore
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink, free_port
from mailsift.testing.waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
ADMIN = Principal("setup", "admin")
PASSWORD = "correct horse battery"

PACK_V1 = '''
[pack]
name = "finance-lures"
description = "Finance lures, first version"
default_state = "active"

[[rule]]
id = "WIRE_URGENT_LURE"
description = "Urgent wire transfer request"
category = "phish"
weight = 7.0
body = '/\\burgent wire transfer\\b/i'
'''
PACK_V2 = PACK_V1 + '''
[[rule]]
id = "INVOICE_LURE"
description = "Mentions an invoice (misfires on every legitimate invoice)"
category = "phish"
weight = 7.0
body = '/\\binvoice\\b/i'
'''

PACK_V3_RULE = '''
[[rule]]
id = "GIFT_CARD_LURE"
description = "Asks for gift cards"
category = "phish"
weight = 7.0
body = '/\\bgift cards?\\b/i'
'''


class Canary(http.server.BaseHTTPRequestHandler):
    """A local web server that hostile mail tries to reach: any hit is a failure."""

    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Canary.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Console:
    url: str
    settings: Settings
    services: StoreServices
    rollout: RolloutService
    sink: SmtpSink
    canary_url: str
    ids: dict[str, list[str]] = field(default_factory=dict)

    @property
    def store(self) -> Any:
        return self.services.store


def _hostile_html(canary: str) -> str:
    return (
        '<p>Verify your account now or it will be suspended.</p>'
        f'<script>window.top.document.title="PWNED"; fetch("{canary}/script");</script>'
        f'<img src="{canary}/img.png" onerror="window.top.document.title=\'PWNED\'">'
        f'<link rel="stylesheet" href="{canary}/style.css">'
        f'<iframe src="{canary}/frame"></iframe>'
        f'<p style="background:url({canary}/bg.png)">Styled</p>'
        '<a href="javascript:window.top.document.title=\'PWNED\'">click me</a> '
        '<a href="http://192.0.2.55/login">https://www.paypal.com/signin</a>'
        f'<form action="{canary}/post"><input type="password" name="p"></form>'
    )


def fill(console: Console, now: float) -> None:
    """Two days of traffic through the real pipeline, recorded as the gateway records it."""
    store, settings = console.store, console.settings
    tmp = Path(settings.store.data_dir)
    for name, text in (("v1", PACK_V1), ("v2", PACK_V2)):
        path = tmp / f"finance-lures-{name}.toml"
        path.write_text(text)
        dep = console.rollout.stage(ADMIN, str(path), note=f"finance asked ({name})")
        console.rollout.promote(ADMIN, dep.name, dep.version, to="active", force=True,
                                reason="test setup")
    pipeline = build_pipeline(settings, ScanOptions(offline=True,
                                                    rollout=console.rollout.state()))
    mail: list[tuple[str, bytes, tuple[str, ...]]] = []
    for i in range(36):
        mail.append(("note", make_message(subject=f"Notes from meeting {i}",
                                          message_id=f"<note-{i}@example.org>",
                                          text="Hi,\n\nthe notes are on the wiki.\n"),
                     ("tom@example.net",)))
    for i in range(8):
        to = ("tom@example.net",) if i % 2 == 0 else ("tom@example.net", "ann@example.net")
        mail.append(("phish", make_message(
            subject=f"Your account has been suspended ({i})", message_id=f"<phish-{i}@x>",
            from_="PayPal <service@paypa1-secure.example>",
            html=('<p>Unusual sign-in activity. Verify your account now or it will be '
                  'suspended.</p><a href="http://192.0.2.55/login">https://www.paypal.com/'
                  'signin</a><form action="http://192.0.2.55/c"><input type="password">'
                  '</form>'),
            text="Verify your account now: http://192.0.2.55/login"), to))
    for i in range(10):
        to = ("tom@example.net",) if i < 6 else ("carol@example.net",)
        mail.append(("invoice", make_message(
            subject=f"Invoice {1000 + i} from Acme Hosting", message_id=f"<invoice-{i}@x>",
            from_="Acme Billing <billing@acme-hosting.example>",
            text=f"Hello,\n\nyour invoice {1000 + i} for November is attached. Total EUR "
                 "49.00, due in 30 days.\n"), to))
    mail.append(("hostile", make_message(
        subject="Security alert: verify your account", message_id="<hostile-1@x>",
        from_="PayPal <service@paypa1-secure.example>",
        text="Verify your account now: http://192.0.2.55/login",
        html=_hostile_html(console.canary_url)), ("tom@example.net",)))
    for n, (kind, raw, rcpts) in enumerate(mail):
        env = Envelope(mail_from=f"{kind}@sender.example", rcpt_to=rcpts,
                       connection=Connection(client_ip="192.0.2.10", helo="mx.sender.example"))
        result = pipeline.scan(raw, env, message_id=message_ref(raw, env),
                               lists=store.lists.snapshot())
        # spread over the last day; the lure misfires in the last hours, as a new rule would
        age = (n * 1777) % 86000 if kind != "invoice" else 600 + n * 300
        store.trace.record(result, raw, received_at=now - age)
        console.ids.setdefault(kind, []).append(result.id)
    # a third version waits in shadow; the watcher recorded what it would have done
    path = tmp / "finance-lures-v3.toml"
    path.write_text(PACK_V2 + PACK_V3_RULE)
    v3 = console.rollout.stage(ADMIN, str(path), note="adds a gift-card lure")
    console.store.rollout.record_shadow([
        {"message_pk": mid, "artifact": f"{v3.artifact}@{v3.version}", "at": now - 60 * i,
         "actual_category": "clean", "actual_action": "deliver",
         "category": "phish" if i % 9 == 0 else "clean",
         "action": "quarantine" if i % 9 == 0 else "deliver", "score": 1.0}
        for i, mid in enumerate(console.ids["note"])])
    # the breaker's reaction to the lure, as the gateway's watcher would handle it
    console.rollout.handle_trip(Trip("rule:INVOICE_LURE", "rate", None,
                                     "10 quarantined of 40 scanned (expected 0.4)"),
                                window_seconds=600)
    users = UserStore(store.engine, store.clock)
    users.create("admin", PASSWORD, "admin")
    users.create("analyst", PASSWORD, "analyst")
    users.create("ann", PASSWORD, "recipient", mailbox="ann@example.net")


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free port in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off", ws="none"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=20, what="the console to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def login(page: Any, user: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def screenshot(page: Any, name: str, tmp_path: Path) -> Path:
    """Every main page is photographed (proves it renders); with MAILSIFT_SCREENSHOTS=1 the
    pictures also replace the ones in docs/screenshots."""
    out = tmp_path / f"{name}.png"
    page.screenshot(path=str(out), full_page=True)
    assert out.stat().st_size > 10_000
    if os.environ.get("MAILSIFT_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, SCREENSHOTS / f"{name}.png")
    return out


@contextlib.contextmanager
def session_pages(browser: Any, url: str, store: Any,
                  **context_options: Any) -> Iterator[Callable[[str], Any]]:
    """``make(user)``: a page in a fresh browser context on ``url``, signed in with a session
    started in ``store`` (the sign-in form has its own tests); the contexts close at the end."""
    contexts: list[Any] = []

    def make(user: str) -> Any:
        context = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=url,
                                      **context_options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        token, _ = store.users.start_session(user)
        context.add_cookies([{"name": "mailsift_session", "value": token, "url": url}])
        return context.new_page()

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


@contextlib.contextmanager
def running_console(tmp: Path, rollout: dict[str, Any] | None = None,
                    extra: Any = None) -> Iterator[Console]:
    """The console of the tests, served: a store filled by ``fill`` (then ``extra(console,
    now)`` if given), a sink as the release next hop, a canary server for hostile mail.
    ``rollout`` replaces the ``[rollout]`` settings of the shared console."""
    import time

    from fastapi import FastAPI

    from mailsift.interfaces.web import build_web_router

    Canary.hits = []
    canary = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Canary)
    threading.Thread(target=canary.serve_forever, daemon=True).start()
    with SmtpSink() as sink:
        settings = Settings.model_validate({
            "store": {"data_dir": str(tmp / "data"), "release_port": sink.port},
            "scan": {"offline": True},
            "rollout": rollout if rollout is not None else {
                "recent_messages": 0, "min_shadow_hours": 0.0,
                "known_good": [str(ROOT / "tests" / "corpus" / "known-good")]},
        })
        services = StoreServices.open(settings)
        rollout_service = RolloutService(services.store, settings)
        c = Console("", settings, services, rollout_service, sink,
                    f"http://127.0.0.1:{canary.server_address[1]}")
        now = time.time()
        fill(c, now)
        if extra is not None:
            extra(c, now)
        app = FastAPI()
        app.include_router(build_web_router(services, settings=settings,
                                            rollout=rollout_service))
        try:
            with serve(app) as url:
                c.url = url
                yield c
        finally:
            services.close()
            canary.shutdown()
            canary.server_close()
