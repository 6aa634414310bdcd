"""Fixtures of the console tests: the console served on a free port, the browser, pages."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_support import CHROMIUM, PASSWORD, Canary, Console, fill, login, serve

from mailsift.config.schema import Settings
from mailsift.services.rollout import RolloutService
from mailsift.services.store_services import StoreServices
from mailsift.testing.sink import SmtpSink

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    from fastapi import FastAPI

    from mailsift.interfaces.web import build_web_router

    tmp = tmp_path_factory.mktemp("console")
    Canary.hits = []
    canary = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Canary)
    threading.Thread(target=canary.serve_forever, daemon=True).start()
    with SmtpSink() as sink:
        settings = Settings.model_validate({
            "store": {"data_dir": str(tmp / "data"), "release_port": sink.port},
            "scan": {"offline": True},
            "rollout": {"recent_messages": 0, "min_shadow_hours": 0.0,
                        "known_good": [str(ROOT / "tests" / "corpus" / "known-good")]},
        })
        services = StoreServices.open(settings)
        rollout = RolloutService(services.store, settings)
        c = Console("", settings, services, rollout, sink,
                    f"http://127.0.0.1:{canary.server_address[1]}")
        fill(c, time.time())
        app = FastAPI()
        app.include_router(build_web_router(services, settings=settings, rollout=rollout))
        try:
            with serve(app) as url:
                c.url = url
                yield c
        finally:
            services.close()
            canary.shutdown()
            canary.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def new_page(browser: Any, console: Console) -> Iterator[Any]:
    contexts = []

    def make(user: str = "admin", password: str = PASSWORD) -> Any:
        context = browser.new_context(viewport={"width": 1360, "height": 900},
                                      base_url=console.url)
        context.set_default_timeout(30_000)  # a loaded 2-core CI machine, not a slow page
        contexts.append(context)
        page = context.new_page()
        if user:
            login(page, user, password)
        return page

    yield make
    for context in contexts:
        context.close()
