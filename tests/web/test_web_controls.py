"""Safe controls and charts that show a spike (issue 24, points 3 and 4), in a real browser.

The console here has no known-good evidence configured at all (``min_known_good = 0``, no
corpus, no robustness set), a harmless pack staged beside the shared console's data, and a
spike: 15 messages quarantined by one rule inside a single minute, two minutes ago.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from web_support import ADMIN, Console, running_console, screenshot

from mailsift.core.findings import ArtifactState, Finding
from mailsift.core.rollout import CanaryScope
from mailsift.core.verdict import Action, Category
from mailsift.store import TraceQuery
from mailsift.testing.storekit import make_result

HARMLESS = '''
[pack]
name = "harmless"
description = "A rule that matches nothing we have"
default_state = "active"

[[rule]]
id = "NEVER_SEEN_LURE"
description = "A phrase nobody writes"
category = "phish"
weight = 7.0
body = '/\\bzyzzyva quux\\b/i'
'''
SPIKE = 15


def _spike_and_harmless(console: Console, now: float) -> None:
    minute = (now // 60 - 2) * 60
    for i in range(SPIKE):
        hit = Finding("SPIKE_LURE", 7.0, ("x",), "rules", "phish",
                      artifact="rules:finance-lures", version="spike")
        result = make_result(f"spike-{i}", b"Subject: prize\r\n\r\nclaim it\r\n",
                             recipients={"tom@example.net": Action.QUARANTINE},
                             category=Category.PHISH, findings=(hit,),
                             subject=f"You won ({i})", from_addr="prize@lottery.example")
        console.store.trace.record(result, b"Subject: prize\r\n\r\nclaim it\r\n",
                                   received_at=minute + 1 + i * 3)
    path = Path(console.settings.store.data_dir) / "harmless.toml"
    path.write_text(HARMLESS)
    console.rollout.stage(ADMIN, str(path), note="harmless")


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """Overrides the shared console: no known-good evidence, a spike, a harmless pack."""
    with running_console(tmp_path_factory.mktemp("controls"), rollout={
            "recent_messages": 0, "min_shadow_hours": 0.0, "known_good": [],
            "min_known_good": 0, "robustness_set": False, "reported_ham": False},
            extra=_spike_and_harmless) as c:
        yield c


def _confirm(page: Any, reason: str) -> None:
    page.fill("#confirm-reason", reason)
    page.check("#confirm-check")
    page.click("#confirm-action")


def test_issue24_no_release_link_carries_an_empty_query(new_page: Any,
                                                         console: Console) -> None:
    page = new_page()
    # the action filter counts: delivered mail has no quarantined copy to release
    page.goto("/trace?action=deliver")
    assert int(page.locator("#match-count").inner_text()) > 0
    assert "0 of them still quarantined" in page.locator(".summary").inner_text()
    assert page.locator("a[href^='/bulk']").count() == 0
    # quarantined mail, but no narrowing filter: the console asks to narrow, offers nothing
    page.goto("/trace?action=quarantine")
    assert page.locator("#bulk-narrow").count() == 1
    assert page.locator("a[href^='/bulk']").count() == 0
    page.goto("/quarantine")
    assert page.locator("#bulk-narrow").count() == 1
    assert page.locator("a[href^='/bulk']").count() == 0
    # a hand-typed empty query is refused, not offered as "everything"
    for url in ("/bulk", "/bulk?", "/bulk?action=quarantine&status=quarantined"):
        page.goto(url)
        assert "needs a query" in page.locator("#bulk-refused").inner_text()
        assert page.locator("#confirm-bulk").count() == 0
    # and a hand-made POST with no query releases nothing
    page.goto("/quarantine")
    csrf = page.locator("form[action='/logout'] input[name=csrf]").get_attribute("value")
    before = len(console.sink)
    answer = page.request.post("/bulk", form={"csrf": csrf, "confirm": "99", "reason": "x",
                                              "all": "yes"})
    assert answer.status == 400 and "needs a query" in answer.text()
    assert len(console.sink) == before
    # a narrowed query still links, with the query it was given
    page.goto("/trace?sender=%40sender.example&action=quarantine")
    link = page.locator("#bulk-link").get_attribute("href")
    assert link is not None and link.startswith("/bulk?") and "sender=" in link


def test_issue24_confirmation_names_the_count_and_refuses_an_empty_reason(
        new_page: Any, console: Console, tmp_path: Path) -> None:
    message = console.ids["phish"][1]  # tom and ann
    page = new_page()
    page.goto(f"/quarantine/{message}")
    page.click("#delete")
    assert page.locator("#confirm-count").inner_text() == "2"
    assert "Yes, delete 2 quarantined copies" in page.locator(
        "label[for=confirm-check]").inner_text()
    assert page.locator("#confirm-action").inner_text() == "Delete 2 quarantined copies"
    sample = page.locator("#confirm-sample").inner_text()
    assert "tom@example.net" in sample and "ann@example.net" in sample
    assert page.locator("#confirm-reason").get_attribute("required") is not None
    screenshot(page, "confirm-delete", tmp_path)
    _confirm(page, "   ")  # blank: the browser lets it through, the server does not
    assert "reason is required" in page.locator("#confirm-problem").inner_text()
    assert set(console.store.trace.statuses(message).values()) == {"quarantined"}
    # a stale or invented count is refused too: the confirmation must name the real one
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    stale = page.request.post(f"/quarantine/{message}/delete",
                              form={"csrf": csrf, "confirm": "1", "reason": "campaign"})
    assert stale.status == 400 and "count changed" in stale.text()
    assert set(console.store.trace.statuses(message).values()) == {"quarantined"}
    _confirm(page, "known campaign")
    assert "deleted" in page.locator(".flash.ok").inner_text()
    assert set(console.store.trace.statuses(message).values()) == {"deleted"}
    entry = console.store.audit.entries(action="quarantine.delete", target=message)[0]
    assert entry.detail["reason"] == "known campaign" and entry.actor == "admin"
    # the bulk release asks the same: the count in the confirmation, a reason
    page.goto("/bulk?sender=%40sender.example")
    count = page.locator("#bulk-count").inner_text()
    assert f"Yes, release {count} copies" in page.locator(
        "label[for=confirm-check]").inner_text()
    before = len(console.sink)
    page.fill("#confirm-reason", " ")
    page.check("#confirm-check")
    page.click("#confirm-bulk")
    assert "reason is required" in page.locator("#confirm-problem").inner_text()
    assert len(console.sink) == before


def test_issue24_the_gate_with_no_evidence_is_not_green(new_page: Any, console: Console,
                                                        tmp_path: Path) -> None:
    page = new_page()
    page.goto("/rollouts")
    page.locator("#deployments tr", has_text="rules:harmless").locator(
        "text=Run gate").click(timeout=60_000)
    banner = page.locator(".flash.bad").inner_text()
    assert "passed without evidence" in banner and "0 known-good" in banner
    assert page.locator(".flash.ok").count() == 0
    row = page.locator("#deployments tr", has_text="rules:harmless")
    verdict = row.locator(".gate-verdict")
    assert verdict.inner_text() == "passed, but not proven"
    assert "warn" in (verdict.get_attribute("class") or "")
    assert "0 known-good" in row.locator(".gate-warning").inner_text()
    # the shadow diff stands beside the verdict, where the gate's colour is read
    shadow = page.locator("#deployments tr.state-shadow", has_text="finance-lures")
    shadow.locator("text=Run gate").click(timeout=60_000)
    shadow = page.locator("#deployments tr.state-shadow", has_text="finance-lures")
    assert shadow.locator(".gate-verdict").inner_text() == "refused"
    assert re.search(r"shadow diff: \d+ of 36 changed",
                     shadow.locator(".gate-evidence").inner_text())
    screenshot(page, "rollouts-evidence", tmp_path)


def test_issue24_withdraw_a_canary_and_no_rollback_where_none_can_work(
        new_page: Any, console: Console, tmp_path: Path) -> None:
    name = "rules:harmless"
    dep = console.rollout.registry.find(name, None)
    console.rollout.promote(ADMIN, name, dep.version, to="canary", force=True, reason="pilot",
                            scope=CanaryScope(domains=("pilot.example",)))
    page = new_page()
    page.goto("/rollouts")
    # finance-lures has an earlier version that acted; harmless has none: no button for it
    assert page.locator("#rollback-finance-lures").count() == 1
    assert page.locator("#rollback-harmless").count() == 0
    assert page.locator("#withdraw-harmless").count() == 1
    page.click("#withdraw-harmless")
    assert page.locator("#confirm-count").inner_text() == "1"
    assert "@pilot.example" in page.locator("#confirm-sample").inner_text()
    screenshot(page, "confirm-withdraw", tmp_path)
    _confirm(page, "pilot users complained")
    assert "withdrawn to shadow" in page.locator(".flash.ok").inner_text()
    states = {d.version: d.state for d in console.store.rollout.deployments("rules",
                                                                            "harmless")}
    assert states[dep.version] is ArtifactState.SHADOW
    entry = console.store.audit.entries(action="rollout.withdraw")[0]
    assert entry.detail["reason"] == "pilot users complained"
    # a canary button is gone with the canary; promoting past a refused gate speaks console
    assert page.locator("#withdraw-harmless").count() == 0
    shadow = page.locator("#deployments tr.state-shadow", has_text="finance-lures")
    shadow.locator("select[name=to]").select_option("active")
    shadow.locator("button", has_text="Promote").click()
    text = page.locator(".error-message").inner_text()
    assert "promotion refused" in text and "--force" not in text and "force (audited)" in text


def test_issue24_the_banner_is_never_taken_from_the_url(new_page: Any,
                                                        console: Console) -> None:
    bait = "Your session expired: call the help desk on +1 555 0100"
    page = new_page(user="")
    page.goto(f"/login?msg={bait}&err={bait}&sig=0")
    assert page.locator(".flash").count() == 0 and "help desk" not in page.content()
    page = new_page()
    page.goto(f"/quarantine?msg={bait}&err={bait}")
    assert page.locator(".flash").count() == 0
    # what the console itself says still shows, once, and not through the URL
    page.goto("/lists")
    page.fill("input[name=value]", "flash-test.example")
    page.select_option("select[name=kind]", "domain")
    page.click("text=Add entry")
    assert "added allow domain flash-test.example" in page.locator(".flash.ok").inner_text()
    assert "msg=" not in page.url and "flash" not in page.url
    page.reload()
    assert page.locator(".flash").count() == 0


def test_issue24_a_one_minute_spike_shows_against_the_breakers_trip_line(
        new_page: Any, console: Console, tmp_path: Path) -> None:
    page = new_page()
    page.goto("/?hours=6")
    assert "1-minute buckets" in page.locator("h1").inner_text()
    spike_at = console.store.trace.search(TraceQuery(subject="You won (0)")).items[0]
    label = datetime.fromtimestamp(spike_at.received_at // 60 * 60, UTC).strftime("%H:%M")
    html = page.content()
    # one bar for that minute holds the whole spike (a 15-minute bucket would dilute it)
    counts = [int(n) for n in re.findall(rf"<title>{label}: quarantine (\d+)</title>", html)]
    assert counts and max(counts) >= SPIKE
    row = page.locator("#breaker-subjects tr", has_text="rule:SPIKE_LURE")
    assert row.count() == 1
    # the rule is over its trip line now, and the page says what the breaker does about it:
    # the breaker's baseline is too small to judge established rules, so no incident opens
    status = row.locator(".breaker-status").inner_text()
    assert "warming up" in status
    tiles = page.locator("#tile-tripping b").inner_text()
    assert int(tiles) >= 1
    open_incidents = len(console.store.rollout.incidents("open"))
    assert page.locator("#tile-incidents b").inner_text() == str(open_incidents)
    # the rule whose incident is open says so beside its rate
    invoice = page.locator("#breaker-subjects tr", has_text="rule:INVOICE_LURE")
    if invoice.count():
        assert "incident" in invoice.locator(".breaker-status").inner_text()
    chart = page.locator("figure.chart", has_text="rule:SPIKE_LURE")
    assert chart.locator("circle.over").count() >= 1
    assert chart.inner_html().count("trip line (") >= 1
    screenshot(page, "dashboard-breaker", tmp_path)


def test_issue24_retiring_a_rule_or_clearing_its_override_is_confirmed(
        new_page: Any, console: Console) -> None:
    page = new_page()
    page.goto("/rollouts")
    form = page.locator("#rule-state")
    form.locator("input[name=rule]").fill("NEVER_SEEN_LURE")
    form.locator("select[name=state]").select_option("retired")
    form.locator("button[type=submit]").click()
    # a preview first: nothing has changed yet
    assert page.locator("#confirm-count").inner_text() == "1"
    assert "NEVER_SEEN_LURE" in page.locator("#confirm-sample").inner_text()
    assert "NEVER_SEEN_LURE" not in console.rollout.status()["rules"]
    _confirm(page, "the phrase is in a partner's newsletter")
    assert page.locator(".flash.ok").inner_text() == "rule NEVER_SEEN_LURE: retired"
    rule = console.rollout.status()["rules"]["NEVER_SEEN_LURE"]
    assert rule["state"] == "retired" and "newsletter" in rule["reason"]
    page.locator("tr", has_text="NEVER_SEEN_LURE").locator("button",
                                                          has_text="clear override").click()
    assert page.locator("h1").inner_text() == "Clear the override of rule NEVER_SEEN_LURE"
    _confirm(page, "back to the pack's state")
    assert "override cleared" in page.locator(".flash.ok").inner_text()
    assert "NEVER_SEEN_LURE" not in console.rollout.status()["rules"]
