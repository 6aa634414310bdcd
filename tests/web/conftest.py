"""Fixtures of the console tests: the console served on a free port, the browser, pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_support import CHROMIUM, PASSWORD, Console, login, running_console

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with running_console(tmp_path_factory.mktemp("console")) as c:
        yield c


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
