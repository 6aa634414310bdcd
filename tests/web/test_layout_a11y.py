"""Every console page at a phone's and a laptop's width, light and dark (issue 24, points 6-7).

For each page the console's router serves (``VISITS``; ``test_every_get_route_is_visited``
fails for a GET route that is neither visited nor listed in ``NOT_PAGES``, so a new page
cannot escape): at 390 px and at 1366 px the page does not scroll sideways and the sign-out
button is inside the window (at 1366 px no table needs its own scroll box either); every form
control has a label (not just a placeholder); the first Tab reaches a working skip link and
every focusable element shows a focus ring; and axe-core finds no serious or critical WCAG
2.0-2.2 A/AA violation, in the light colour scheme at 390 px and in the dark one at 1366 px.

Run alone: ``.venv/bin/pytest tests/web/test_layout_a11y.py`` (one browser and one signed-in
context per user for the whole module). axe-core comes from the npm registry
(``a11y_support.axe_source``; docs/testing.md says why and how).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from a11y_support import (
    AxeUnavailable,
    axe_source,
    axe_violations,
    get_routes,
    keyboard_problems,
    layout_problems,
    open_details,
    unlabelled_controls,
)
from web_support import PACK_V2, PACK_V3_RULE, Console, login

from mailsift.core.rollout import CanaryScope
from mailsift.services.access import Principal
from mailsift.services.links import LinkSigner
from mailsift.store import TraceQuery

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}
ADMIN = Principal("admin", "admin")
ANN = Principal("ann", "recipient", "ann@example.net")


@dataclass(frozen=True)
class Visit:
    """One page to check: the router's ``route``, who looks at it (``None``: signed out) and
    the URL, whose ``{names}`` are filled from the ``seeded`` fixture."""

    route: str
    user: str | None
    url: str
    status: int = 200

    @property
    def id(self) -> str:
        return f"{self.user or 'signed-out'}:{self.url}"


VISITS = (
    # signed out: the sign-in page and the recipients' pages reached from a digest
    Visit("/login", None, "/login"),
    Visit("/signin/link", None, "/signin/link"),
    Visit("/q/{purpose}/{message}", None, "/q/request/{phish_ann}?t={request_token}"),
    Visit("/q/{purpose}/{message}", None, "/q/signin/-?t={signin_token}"),
    Visit("/q/{purpose}/{message}", None, "/q/request/{phish_ann}?t=forged.link", status=400),
    # an administrator
    Visit("/", "admin", "/"),
    Visit("/quarantine", "admin", "/quarantine"),
    Visit("/quarantine/{message}", "admin", "/quarantine/{hostile}"),
    Visit("/bulk", "admin", "/bulk?category=phish"),
    Visit("/bulk", "admin", "/bulk"),
    Visit("/jobs/{job_id}", "admin", "/jobs/{job}"),
    Visit("/requests", "admin", "/requests"),
    Visit("/trace", "admin", "/trace?category=phish"),
    Visit("/trace/{message}", "admin", "/trace/{phish_ann}"),
    Visit("/dmarc", "admin", "/dmarc"),
    Visit("/lists", "admin", "/lists"),
    Visit("/rollouts", "admin", "/rollouts"),
    Visit("/audit", "admin", "/audit"),
    Visit("/incidents", "admin", "/incidents"),
    Visit("/incidents/{incident}", "admin", "/incidents/{incident}"),
    Visit("/incidents/{incident}", "admin", "/incidents/no-such-incident", status=404),
    Visit("/reports", "admin", "/reports"),
    Visit("/users", "admin", "/users"),
    Visit("/mailflow", "admin", "/mailflow"),
    # a recipient signed in (the end user's view of the same pages)
    Visit("/quarantine", "ann", "/quarantine"),
    Visit("/quarantine/{message}", "ann", "/quarantine/{phish_ann}"),
    Visit("/requests", "ann", "/requests"),
    Visit("/reports", "ann", "/reports"),
)

#: GET routes that are not pages, and why
NOT_PAGES = {
    "/static/ui.css": "the stylesheet",
    "/quarantine/{message}/eml": "a download of the original message",
    "/quarantine/{message}/preview": "the sender's HTML, sandboxed inside the message page",
    "/dmarc/senders.csv": "a CSV download",
}


@pytest.fixture(scope="module")
def seeded(console: Console) -> dict[str, str]:
    """What the pages with an id need, on top of the console's two days of traffic: a
    release request and a report by the recipient, a finished bulk release, a gate report and
    a canary on the rollouts page, digest links."""
    svc, store = console.services, console.store
    phish_ann = next(m for m in console.ids["phish"]
                     if "ann@example.net" in {r.recipient for r in store.trace.get(m).recipients})
    svc.quarantine.request_release(ANN, phish_ann, reason="I expect a mail from them")
    svc.reports.create(ANN, phish_ann, "ham", comment="this one is from our bank")
    job = svc.bulk.start(ADMIN, TraceQuery(recipient="carol@example.net"))
    # in a thread of its own: Playwright's sync API may already run a loop in this one
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, svc.bulk.run(ADMIN, job.id)).result()
    # the rollouts page at its fullest: a gate report beside the shadow diff, and a canary
    shadow = next(d for d in console.rollout.status()["deployments"] if d["state"] == "shadow")
    console.rollout.check(ADMIN, shadow["artifact"], shadow["version"])
    pack = Path(console.settings.store.data_dir) / "finance-lures-v4.toml"
    pack.write_text(PACK_V2 + PACK_V3_RULE.replace("GIFT_CARD_LURE", "GIFT_CARD_LURE_V4"))
    canary = console.rollout.stage(ADMIN, str(pack), note="a canary for the layout test")
    console.rollout.promote(ADMIN, canary.name, canary.version, to="canary",
                            scope=CanaryScope(domains=("example.net",)), force=True,
                            reason="layout test")
    signer = LinkSigner.for_settings(console.settings)
    expires = time.time() + 3600
    return {
        "phish_ann": phish_ann,
        "hostile": console.ids["hostile"][0],
        "job": job.id,
        "incident": store.rollout.incidents()[0].id,
        "request_token": signer.make("request", phish_ann, "ann@example.net", expires),
        "signin_token": signer.make("signin", "", "ann@example.net", expires),
    }


@pytest.fixture(scope="module")
def axe() -> str:
    try:
        return axe_source()
    except AxeUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def page_of(browser: Any, console: Console) -> Iterator[Callable[[str | None], Any]]:
    """One browser page per user for the whole module, signed in once."""
    pages: dict[str | None, Any] = {}
    contexts = []

    def get(user: str | None) -> Any:
        if user not in pages:
            context = browser.new_context(viewport=PHONE, base_url=console.url)
            context.set_default_timeout(30_000)
            contexts.append(context)
            page = context.new_page()
            if user:
                login(page, user)
            pages[user] = page
        return pages[user]

    yield get
    for context in contexts:
        context.close()


def test_every_get_route_is_visited(console: Console, seeded: dict[str, str]) -> None:
    """A GET route of the console that is neither visited here nor listed as not a page
    fails: add it to VISITS (with the data it needs in ``seeded``) or to NOT_PAGES."""
    from mailsift.interfaces.web import build_web_router

    router = build_web_router(console.services, settings=console.settings,
                              rollout=console.rollout)
    routes = {r.path: r for r in router.routes if getattr(r, "path", None) in
              set(get_routes(router))}
    visited = {v.route for v in VISITS}
    missing = sorted(set(routes) - visited - set(NOT_PAGES))
    assert not missing, (f"console GET routes not checked: {missing}; add a Visit for each "
                         f"to VISITS in {__file__} (and what it needs to `seeded`), or, if it "
                         "is not a page (a download), add it to NOT_PAGES with the reason")
    assert visited <= set(routes), f"visits of routes that do not exist: {visited - set(routes)}"
    for v in VISITS:  # each URL is served by the route it claims to check
        path = v.url.format(**seeded).partition("?")[0]
        assert routes[v.route].path_regex.match(path), f"{v.url} is not {v.route}"


def shoot(page: Any, visit: Visit, state: str) -> None:
    """With MAILSIFT_LAYOUT_SHOTS=DIR, a full-page screenshot of each page in each state, to
    look at what the checks passed."""
    out = os.environ.get("MAILSIFT_LAYOUT_SHOTS")
    if out:
        name = re.sub(r"[^\w.-]+", "_", visit.id).strip("_")
        Path(out).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(out) / f"{name}-{state}.png"), full_page=True)


@pytest.mark.parametrize("visit", VISITS, ids=[v.id for v in VISITS])
def test_page_fits_and_passes_axe(visit: Visit, page_of: Callable[[str | None], Any],
                                  seeded: dict[str, str], axe: str) -> None:
    page = page_of(visit.user)
    page.set_viewport_size(PHONE)
    page.emulate_media(color_scheme="light")
    response = page.goto(visit.url.format(**seeded))
    assert response is not None and response.status == visit.status, page.url
    open_details(page)  # folded forms count: they must fit and be labelled too
    signed_in = visit.user is not None
    shoot(page, visit, "390-light")
    problems = [f"390 px: {p}" for p in layout_problems(page, signed_in=signed_in)]
    problems += [f"no label: {c}" for c in unlabelled_controls(page)]
    problems += [f"axe, light, 390 px: {v}" for v in axe_violations(page, axe)]
    problems += [f"keyboard: {p}" for p in keyboard_problems(page)]
    page.set_viewport_size(LAPTOP)
    problems += [f"1366 px: {p}" for p in layout_problems(page, signed_in=signed_in,
                                                          wide_tables=False)]
    page.emulate_media(color_scheme="dark")
    problems += [f"axe, dark, 1366 px: {v}" for v in axe_violations(page, axe)]
    shoot(page, visit, "1366-dark")
    assert not problems, f"{visit.id}:\n" + "\n".join(problems)


BROKEN_PAGE = """<!doctype html><html lang="en"><head><title>broken</title><style>
  body { margin: 0; } .wide { width: 1000px; } .faint { color: #bbb; background: #fff; }
  a:focus-visible, button:focus-visible { outline: none; }
</style></head><body>
<header class="top"><form class="who"><button type="submit">Sign out</button></form></header>
<main id="main"><div class="wide">a row of a table that does not fit</div>
<p class="faint">grey on white</p><input name="reason" placeholder="reason">
<select name="to"><option>canary</option></select><button type="button">→</button>
<a href="#x">a link</a></main></body></html>"""


def test_the_checks_catch_what_they_are_for(browser: Any, axe: str) -> None:
    """Each check finds its problem in a page built to have it (so a check that silently
    stopped working, axe not loading for one, fails here and not only in production)."""
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        page.set_content(BROKEN_PAGE)
        (wide,) = layout_problems(page, signed_in=True)
        assert "1000 px wide in a 390 px window" in wide and "div.wide" in wide
        assert unlabelled_controls(page) == ['input[name="reason"]', 'select[name="to"]',
                                             "button"]
        found = " | ".join(axe_violations(page, axe))
        assert "serious color-contrast" in found and "critical select-name" in found
        keyboard = keyboard_problems(page)
        assert "the first Tab reaches" in keyboard[0]
        assert any("no visible focus: a[href=\"#x\"]" in p for p in keyboard)
    finally:
        context.close()
