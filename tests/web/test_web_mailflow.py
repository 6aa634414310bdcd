"""The flow-rules page in a real browser (issue 23): an analyst sees the rules but cannot edit;
an admin's edit with an error is refused with its line and stages nothing; a valid edit is
staged as a version in shadow (audited); a rule is tested against an uploaded .eml and against
a stored message; once promoted, the list shows the rule with its version and its hits, linked
to the trace pivoted by the rule."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from web_support import ADMIN, Console, screenshot

from mailsift.core.envelope import Connection, Envelope
from mailsift.mailflow.loader import parse_rules
from mailsift.mailflow.step import FlowStep
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.testing.messages import make_message

RULES = '''[[mailflow.rules]]
name = "tag-invoices"
priority = 10

[mailflow.rules.if]
subject_words = ["invoice"]

[mailflow.rules.then]
prepend_subject = "[FINANCE] "
bcc = ["review@example.net"]
'''


def versions(console: Console) -> list[str]:
    return [d.version for d in console.store.rollout.deployments("mailflow")]


def test_list_edit_refused_with_its_line_then_staged(new_page: Any, console: Console,
                                                     tmp_path: Path) -> None:
    analyst = new_page("analyst")
    analyst.goto("/mailflow")
    assert analyst.locator("#flow-rules").is_visible()
    assert analyst.locator("#stage").count() == 0  # no editor without rollout.write
    admin = new_page("admin")
    admin.click("#nav-mailflow")
    admin.wait_for_url("**/mailflow")
    before = versions(console)
    admin.fill("textarea[name=rules] >> nth=0", RULES.replace("priority", "priorty"))
    admin.click("#stage")
    errors = admin.locator("#edit-errors").inner_text()
    assert "rules:3: rules.priorty: unknown field" in errors
    assert versions(console) == before  # nothing half-loaded, nothing staged
    # the text comes back as typed, to be fixed
    assert "priorty" in admin.locator("textarea[name=rules] >> nth=0").input_value()
    admin.fill("textarea[name=rules] >> nth=0", RULES)
    admin.fill("input[name=note]", "finance wants a copy")
    admin.click("#stage")
    assert "in shadow" in admin.locator(".flash.ok").inner_text()
    (staged,) = [v for v in versions(console) if v not in before]
    assert admin.locator("#flow-versions").inner_text().count(staged) == 1
    entry = console.store.audit.entries(action="rollout.stage", limit=1)[0]
    assert entry.actor == "admin" and entry.target == f"mailflow:rules@{staged}"
    screenshot(admin, "mailflow", tmp_path)


def test_rule_tested_on_an_eml_and_a_stored_message(new_page: Any, console: Console,
                                                    tmp_path: Path) -> None:
    eml = tmp_path / "invoice.eml"
    eml.write_bytes(make_message(subject="Invoice 77 for November",
                                 message_id="<inv-77@example.org>"))
    page = new_page("analyst")  # testing needs no write permission
    page.goto("/mailflow")
    page.set_input_files("input[name=eml]", str(eml))
    page.fill("input[name=rcpt]", "tom@example.net")
    page.locator("#test summary").click()
    page.fill("#test textarea[name=rules]", RULES)
    page.click("#run-test")
    report = page.locator("#test-report").inner_text()
    assert "tag-invoices [enforce] did: prepend subject '[FINANCE] '; bcc review@example.net" \
        in report
    assert "[FINANCE] Invoice 77 for November" in report
    assert "review@example.net: deliver" in report
    # a bad rule text is refused with its line, nothing is run
    page.locator("#test summary").click()
    page.fill("#test textarea[name=rules]",
              RULES.replace("[[mailflow.rules]]", "[[mailflow.rules]"))
    page.set_input_files("input[name=eml]", str(eml))
    page.click("#run-test")
    assert "rules:1: syntax error" in page.locator("#test-errors").inner_text()
    # a stored message, by its reference: its envelope comes from the trace
    stored = console.ids["invoice"][0]
    page.fill("input[name=message]", stored)
    page.locator("#test summary").click()
    page.fill("#test textarea[name=rules]", RULES)
    page.click("#run-test")
    assert "tag-invoices [enforce] did" in page.locator("#test-report").inner_text()


def test_promoted_version_lists_rules_with_hits_linked_to_the_trace(
        new_page: Any, console: Console) -> None:
    svc = console.rollout
    acted = []
    for name in ("tag-invoices-1", "tag-invoices-2"):  # two versions that acted in turn
        acted.append(svc.registry.flow.stage_text(ADMIN, RULES.replace("tag-invoices", name)))
        svc.promote(ADMIN, "mailflow:rules", acted[-1].version, force=True, reason="setup")
    first, dep = acted
    # one message through the promoted rules, recorded as the gateway records it
    settings = console.settings
    step = FlowStep.for_state(settings.direction, settings.mailflow, svc.state())
    assert step.enforced.version == dep.version
    raw = make_message(subject="Invoice 88", message_id="<inv-88@example.org>")
    env = Envelope(mail_from="billing@example.org", rcpt_to=("tom@example.net",),
                   connection=Connection(client_ip="192.0.2.10"))
    ctx = step.before(raw, env)
    pipeline = build_pipeline(settings, ScanOptions(offline=True, rollout=svc.state()))
    result, out = step.after(ctx, pipeline.scan(ctx.raw, env, message_id="ms-flow-88"), ctx.raw)
    console.store.trace.record(result, out, received_at=time.time())
    assert parse_rules(RULES)  # the page's text form is the same shape

    page = new_page("admin")
    page.goto("/mailflow")
    assert page.locator("#enforced").inner_text() == dep.version
    row = page.locator("#flow-rules tr", has_text="tag-invoices-2")
    assert "enforce" in row.inner_text() and "10" in row.inner_text()
    row.locator("a").click()
    page.wait_for_url("**/trace?finding=MAILFLOW%3Atag-invoices-2*")
    assert "Invoice 88" in page.locator("main").inner_text()
    # and back: the rollback button returns to the version enforced before (audited)
    page.goto("/mailflow")
    page.fill("input[name=reason]", "finance changed its mind")
    page.click("#rollback-flow")
    # the confirmation names what goes back (issue 24); the reason typed is carried over
    assert page.locator("#confirm-reason").input_value() == "finance changed its mind"
    page.check("#confirm-check")
    page.click("#confirm-action")
    page.wait_for_url("**/rollouts*")
    assert "mailflow:rules rolled back" in page.locator(".flash.ok").inner_text()
    states = {d.version: d.state.value for d in svc.state().of("mailflow", "rules")}
    assert states[dep.version] == "retired" and states[first.version] == "active"
    entry = console.store.audit.entries(action="rollout.rollback", limit=1)[0]
    assert entry.actor == "admin" and entry.target == "mailflow:rules"
