"""The console in a real browser: what an administrator does during an incident.

Login, search, open a message and read why it was quarantined, release one message, pivot from
a rule to everything it caught and bulk-release the whole query (count, confirmation, job),
roll back an artifact, release an incident, and a recipient who may see only their own mail.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from web_support import Console, screenshot

from mailsift.core.findings import ArtifactState
from mailsift.store import TraceQuery
from mailsift.testing.waiting import wait_until


def test_login_rejects_a_wrong_password_then_lands_on_the_dashboard(
        new_page: Any, console: Console, tmp_path: Path) -> None:
    page = new_page(user="")
    page.goto("/quarantine")
    assert "/login" in page.url  # not signed in: sent to the login page
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert page.locator(".flash.bad").inner_text() == "wrong username or password"
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/quarantine$"))  # back where it wanted to go
    cookie = next(c for c in page.context.cookies() if c["name"] == "mailsift_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.goto("/")
    assert page.locator(".tile b").first.inner_text() == "55"  # messages scanned in 24 h
    assert page.locator("figure.chart svg rect").count() > 20  # charts, not tables
    assert page.locator("text=Open incidents: affected messages").count() == 1
    assert "INVOICE_LURE" in page.locator("figure.chart").nth(3).inner_text()
    screenshot(page, "dashboard", tmp_path)


def test_search_open_and_read_the_explanation(new_page: Any, console: Console,
                                             tmp_path: Path) -> None:
    page = new_page()
    page.goto("/quarantine")
    page.fill("input[name=subject]", "account has been suspended")
    page.click("text=Search")
    # 8 messages, 4 of them also to ann: 12 copies, less any another test released already
    held, _ = console.store.trace.count(TraceQuery(subject="account has been suspended",
                                                   status="quarantined"))
    assert held >= 9
    assert page.locator("#match-count").inner_text() == str(held)
    screenshot(page, "quarantine", tmp_path)
    page.locator("a.subject").first.click()
    page.wait_for_selector("#explanation")
    assert page.locator("#decided-by").inner_text() == "2-detection"
    text = page.locator("#explanation").inner_text()
    for expected in ("PHISH_VERIFY_ACCOUNT", "HTML_PASSWORD_FIELD", "decisive",
                     "rules:default@", "Authentication", "http://192.0.2.55"):
        assert expected in text, expected
    # every finding has its weight and evidence on the page
    assert page.locator("table.findings tbody tr").count() >= 5
    page.frame_locator("#preview").locator("text=Unusual sign-in").wait_for()
    screenshot(page, "message", tmp_path)
    # pivot: from a finding to every message that carries it
    page.locator("a.finding", has_text="HTML_PASSWORD_FIELD").first.click()
    page.wait_for_url(re.compile(r"/trace\?finding=HTML_PASSWORD_FIELD"))
    assert int(page.locator("#match-count").inner_text()) >= 12


def test_release_one_message(new_page: Any, console: Console) -> None:
    message = console.ids["phish"][0]
    before = len(console.sink)
    page = new_page()
    page.goto(f"/quarantine/{message}")
    page.fill("form[action$='/release'] input[name=reason]", "user confirmed it is expected")
    page.click("#release")
    assert "released to tom@example.net" in page.locator(".flash.ok").inner_text()
    assert console.sink.wait_for(before + 1)
    got = console.sink.messages[-1]
    assert got.rcpt_to == ("tom@example.net",)
    assert got.header("X-Mailsift-Release-Id")
    assert console.store.trace.statuses(message) == {"tom@example.net": "released"}
    # released copies are not offered again
    page.goto(f"/quarantine/{message}")
    assert page.locator("#release").count() == 0


def test_release_to_some_recipients_only(new_page: Any, console: Console) -> None:
    message = console.ids["phish"][1]  # tom and ann
    page = new_page()
    page.goto(f"/quarantine/{message}")
    page.check("input[name=recipients][value='ann@example.net']")
    page.click("#release")
    assert "released to ann@example.net" in page.locator(".flash.ok").inner_text()
    assert console.store.trace.statuses(message) == {"tom@example.net": "quarantined",
                                                     "ann@example.net": "released"}


def test_pivot_from_a_rule_and_bulk_release_the_whole_query(
        new_page: Any, console: Console, tmp_path: Path) -> None:
    page = new_page()
    first = console.ids["invoice"][0]
    page.goto(f"/quarantine/{first}")
    page.locator("a.finding", has_text="INVOICE_LURE").first.click()
    page.wait_for_url(re.compile(r"/trace\?finding=INVOICE_LURE"))
    assert page.locator("#match-count").inner_text() == "10"
    screenshot(page, "trace", tmp_path)
    # narrow the query to one mailbox: the bulk release covers the query, not the page
    page.fill("input[name=recipient]", "tom@example.net")
    page.fill("input[name=since]", "-1d")
    page.click("text=Search")
    page.click("text=Release the 6 quarantined…")
    assert page.locator("#bulk-count").inner_text() == "6"
    assert "since" in page.locator("section.card ul").first.inner_text()  # pinned to a time
    screenshot(page, "bulk-confirm", tmp_path)
    before = len(console.sink)
    page.fill("#confirm-reason", "invoices are legitimate")
    page.check("#confirm-check")
    page.click("#confirm-bulk")
    page.wait_for_url(re.compile(r"/jobs/"))

    def job_done() -> bool:
        if page.locator("#job-state").inner_text() == "done":
            return True
        page.reload()
        return False

    wait_until(job_done, timeout=30, interval=0.3, what="the bulk release job page to say done")
    assert page.locator("#job-sent").inner_text() == "6"
    assert console.sink.wait_for(before + 6)
    n, _ = console.store.trace.count(TraceQuery(finding="INVOICE_LURE",
                                                recipient="tom@example.net",
                                                status="released"))
    assert n == 6
    # carol's copies were outside the query and stay quarantined
    n, _ = console.store.trace.count(TraceQuery(finding="INVOICE_LURE", status="quarantined"))
    assert n == 4


def test_incident_release_in_one_click(new_page: Any, console: Console,
                                       tmp_path: Path) -> None:
    incident = console.store.rollout.incidents()[0]
    page = new_page()
    page.goto("/incidents")
    page.click(f"text={incident.id}")
    assert page.locator("table.rows tbody tr, table.rows tr").count() >= 10
    screenshot(page, "incident", tmp_path)
    page.click("#incident-release")
    page.fill("#confirm-reason", "the lure was demoted")
    page.check("#confirm-check")
    page.click("#confirm-action")
    flash = page.locator(".flash.ok").inner_text()
    assert "incident release" in flash
    # the rule was demoted to shadow by the breaker, so the re-scan lets every invoice go;
    # those already bulk-released are not sent twice (the release ledger)
    n, _ = console.store.trace.count(TraceQuery(finding="INVOICE_LURE", status="quarantined"))
    assert n == 0
    assert console.sink.message_ids()["<invoice-0@x>"] == 1


def test_roll_back_an_artifact(new_page: Any, console: Console, tmp_path: Path) -> None:
    deps = console.store.rollout.deployments("rules", "finance-lures")
    v1, v2 = deps[0], deps[1]
    assert (v1.state, v2.state) == (ArtifactState.RETIRED, ArtifactState.ACTIVE)
    page = new_page()
    page.goto("/rollouts")
    assert page.locator("#deployments").inner_text().count("finance-lures") >= 2
    # the gate replays the known-good corpus against the active set: the gift-card rule of
    # the shadow version changes no verdict there (INVOICE_LURE is in both, and demoted), but
    # its shadow diff moved delivered notes to quarantine, so it is refused (issue 17)
    # (real work: on a busy machine it takes longer than the page's 10 s default)
    page.locator("#deployments tr.state-shadow").locator("text=Run gate").click(timeout=60_000)
    flash = page.locator(".flash.bad").inner_text()
    assert "refused" in flash and "shadow diff" in flash
    row = page.locator("#deployments tr.state-shadow")
    assert "refused" in row.inner_text()
    row.locator("summary", has_text="report").click()
    assert "known-good quarantined: 0" in row.inner_text()
    assert "known-good replayed: 8" in row.inner_text()
    screenshot(page, "rollouts", tmp_path)
    # a staged version nobody wants is retired from the console (audited)
    page.click("#retire-finance-lures")
    page.fill("#confirm-reason", "nobody wants it")
    page.check("#confirm-check")
    page.click("#confirm-action")
    assert "retired" in page.locator(".flash.ok").inner_text()
    assert any(e.action == "rollout.retire" for e in console.store.audit.entries())
    page.click("#rollback-finance-lures")
    page.fill("#confirm-reason", "misfires on invoices")
    page.check("#confirm-check")
    page.click("#confirm-action")
    assert f"rolled back to {v1.version}" in page.locator(".flash.ok").inner_text()
    states = {d.version: d.state for d in console.store.rollout.deployments("rules",
                                                                            "finance-lures")}
    assert states[v1.version] is ArtifactState.ACTIVE
    assert states[v2.version] is ArtifactState.RETIRED
    assert any(e.action == "rollout.rollback" and e.actor == "admin"
               for e in console.store.audit.entries())


def test_lists_add_with_expiry_and_remove(new_page: Any, console: Console,
                                          tmp_path: Path) -> None:
    page = new_page()
    page.goto(f"/quarantine/{console.ids['phish'][2]}")
    page.fill("form[action$='/allow'] input[name=expires]", "7d")
    page.click("#allow-sender")
    # the From address, which allows are matched against, not the envelope sender
    assert "allowed sender service@paypa1-secure.example" in page.locator(
        ".flash.ok").inner_text()
    page.goto("/lists")
    page.select_option("select[name=kind]", "domain")
    page.fill("input[name=value]", "Bad-Actor.example")
    page.select_option("select[name=action]", "block")
    page.fill("input[name=expires]", "12h")
    page.click("text=Add entry")
    table = page.locator("#list-entries").inner_text()
    assert "bad-actor.example" in table and "service@paypa1-secure.example" in table
    screenshot(page, "lists", tmp_path)
    entry = next(e for e in console.store.lists.entries() if e.value == "bad-actor.example")
    assert entry.expires_at is not None
    assert 11.9 * 3600 < entry.expires_at - time.time() < 12.1 * 3600
    page.locator("#list-entries tr", has_text="bad-actor.example").locator("text=remove").click()
    assert "block domain bad-actor.example" in page.locator("#confirm-sample").inner_text()
    page.fill("#confirm-reason", "campaign over")
    page.check("#confirm-check")
    page.click("#confirm-action")
    assert "bad-actor.example" not in page.locator("#list-entries").inner_text()


def test_recipient_sees_only_their_own_quarantine(new_page: Any, console: Console) -> None:
    page = new_page("ann")
    page.goto("/quarantine")
    mine, _ = console.store.trace.count(TraceQuery(recipient="ann@example.net",
                                                   status="quarantined"))
    assert mine >= 2  # phish 1, 3, 5, 7 went to ann too
    assert page.locator("#match-count").inner_text() == str(mine)
    rows = page.locator("table.rows tbody tr")
    assert rows.count() == mine
    assert all("ann@example.net" in rows.nth(i).inner_text() for i in range(mine))
    assert page.locator("text=Release all").count() == 0
    # a message addressed only to tom: denied, whatever the URL
    tom_only = console.ids["phish"][4]
    response = page.goto(f"/quarantine/{tom_only}")
    assert response is not None and response.status in (403, 404)
    assert "Security alert" not in page.content()
    for url in (f"/quarantine/{tom_only}/preview", f"/quarantine/{tom_only}/eml",
                f"/trace/{tom_only}", "/trace", "/rollouts", "/"):
        response = page.goto(url)
        assert response is not None
        assert response.status in (403, 404) or page.url.endswith("/quarantine"), url
    # their own message: visible, without the other recipient, and they may ask for it
    mine = console.ids["phish"][3]
    page.goto(f"/quarantine/{mine}")
    assert "tom@example.net" not in page.locator("#recipients").inner_text()
    page.fill("form[action$='/request'] input[name=reason]", "this is my bank")
    page.click("#request-release")
    assert "release requested" in page.locator(".flash.ok").inner_text()
    # an admin approves it
    admin = new_page()
    admin.goto("/requests")
    admin.click("text=Approve & release")
    assert "approved" in admin.locator(".flash.ok").inner_text()
    assert console.store.trace.statuses(mine)["ann@example.net"] == "released"


def test_delete_is_audited_under_the_users_name(new_page: Any, console: Console,
                                                tmp_path: Path) -> None:
    message = console.ids["phish"][4]
    page = new_page()
    page.goto(f"/quarantine/{message}")
    page.click("#delete")
    page.fill("#confirm-reason", "known campaign")
    page.check("#confirm-check")
    page.click("#confirm-action")
    assert "deleted" in page.locator(".flash.ok").inner_text()
    assert console.store.trace.statuses(message) == {"tom@example.net": "deleted"}
    page.goto("/audit?action=quarantine.delete")
    row = page.locator("#audit tbody tr, #audit tr").filter(has_text=message)
    assert "admin" in row.inner_text() and "known campaign" in row.inner_text()
    screenshot(page, "audit", tmp_path)


def test_a_denied_request_keeps_the_message(new_page: Any, console: Console) -> None:
    message = console.ids["phish"][7]  # tom and ann
    ann = new_page("ann")
    ann.goto(f"/quarantine/{message}")
    ann.click("#request-release")
    admin = new_page()
    admin.goto("/requests")
    row = admin.locator("table.rows tr").filter(has_text=message[:16])
    row.locator("input[name=note]").fill("this is phishing")
    row.locator("text=Deny").click()
    assert "denied" in admin.locator(".flash.ok").inner_text()
    assert console.store.trace.statuses(message)["ann@example.net"] == "quarantined"
    ann.goto("/requests?state=denied")
    assert message[:16] in ann.locator("table.rows").inner_text()
