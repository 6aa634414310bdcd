"""The flow step on real scan results (the real pipeline, offline): each decision action, test
mode, the outbound preset and the limits of bypass."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mailsift.config.mailflow import DirectionSettings, MailflowSettings
from mailsift.config.schema import Settings
from mailsift.core.envelope import Connection, Envelope
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Action, Category
from mailsift.delivery.headers import header_values
from mailsift.mailflow.step import FlowStep
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.pipeline.runner import Pipeline
from mailsift.testing.messages import make_message

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
DIRECTION = DirectionSettings(accepted_domains=("customer.test",),
                              internal_networks=("10.0.0.0/8",))
SPAM = make_message(text=f"Buy now\n{GTUBE}\n", message_id="<spam@example.org>")
HAM = make_message(message_id="<ham@example.org>", headers={"X-Old": "1"},
                   html="<html><body><p>Hello there.</p></body></html>")


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return build_pipeline(Settings.model_validate({"scan": {"offline": True}}),
                          ScanOptions(offline=True))


def run(pipeline: Pipeline, rules: list[dict[str, Any]], raw: bytes, *,
        ip: str = "198.51.100.7", rcpts: tuple[str, ...] = ("bob@customer.test",),
        mail_from: str = "alice@example.org",
        tweak: Any = None) -> tuple[ScanResult, bytes]:
    step = FlowStep(DIRECTION, MailflowSettings.model_validate({"rules": rules}))
    env = Envelope(mail_from=mail_from, rcpt_to=rcpts, connection=Connection(client_ip=ip))
    ctx = step.before(raw, env)
    result = pipeline.scan(ctx.raw, env)
    if tweak is not None:
        result = tweak(result)
    return step.after(ctx, result, ctx.raw)


def rule(name: str, then: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"name": name, "then": then, **kw}


def test_header_actions_and_banner(pipeline: Pipeline) -> None:
    result, out = run(pipeline, [rule("edit", {
        "set_header": {"X-Set": "s"}, "remove_header": ["x-old"], "prepend_subject": "[EXT] ",
        "banner_text": "External sender", "banner_html": "<b>External sender</b>"})], HAM)
    assert list(header_values(out, "x-old")) == []
    assert list(header_values(out, "x-set")) == [b"s"]
    assert b"[EXT] Hello" in out and out.count(b"External sender") == 2
    assert result.verdict.action is Action.DELIVER


@pytest.mark.parametrize(("then", "action"), [
    ({"quarantine": True}, Action.QUARANTINE),
    ({"junk": True}, Action.JUNK),
    ({"reject": "go away"}, Action.REJECT),
])
def test_decision_actions_make_the_verdict_stricter(pipeline: Pipeline, then: dict[str, Any],
                                                    action: Action) -> None:
    result, _ = run(pipeline, [rule("r", then)], HAM)
    assert result.verdict.action is action
    assert all(v.action is action for v in result.recipients.values())
    assert any(o.entry == "r" and o.step.value == "9-mailflow" for o in result.verdict.overrides)


def test_a_rule_never_makes_a_verdict_milder(pipeline: Pipeline) -> None:
    result, _ = run(pipeline, [rule("junk", {"junk": True})], SPAM,
                    tweak=lambda r: _with(r, Category.PHISH, Action.QUARANTINE))
    assert result.verdict.action is Action.QUARANTINE


def test_test_mode_records_and_changes_nothing(pipeline: Pipeline) -> None:
    rules = [rule("t", {"quarantine": True, "prepend_subject": "[T] ", "bcc": ["r@customer.test"]},
                  mode="test")]
    result, out = run(pipeline, rules, HAM)
    assert out == HAM
    assert result.verdict.action is Action.DELIVER
    assert tuple(result.recipients) == ("bob@customer.test",)
    (finding,) = [f for f in result.findings if f.code == "MAILFLOW:t"]
    assert not finding.acts
    assert "would have: prepend subject '[T] '" in result.verdict.explanation


def test_outbound_spam_is_held_and_inbound_spam_junked(pipeline: Pipeline) -> None:
    inbound, _ = run(pipeline, [], SPAM)
    assert inbound.verdict.direction == "inbound"
    assert inbound.verdict.action is Action.JUNK
    outbound, _ = run(pipeline, [], SPAM, ip="10.0.0.5", rcpts=("x@example.net",),
                      mail_from="a@customer.test")
    assert outbound.verdict.direction == "outbound"
    assert outbound.verdict.action is Action.QUARANTINE
    assert "direction outbound: junk -> quarantine" in outbound.verdict.explanation
    internal, _ = run(pipeline, [], HAM, ip="10.0.0.5", rcpts=("b@customer.test",))
    assert internal.verdict.direction == "internal"


def _with(result: ScanResult, category: Category, action: Action) -> ScanResult:
    recipients = {r: replace(v, category=category, action=action)
                  for r, v in result.recipients.items()}
    return replace(result, verdict=replace(result.verdict, category=category, action=action),
                   recipients=recipients)


def test_bypass_needs_authentication_from_outside(pipeline: Pipeline) -> None:
    rules = [rule("let-spam", {"bypass": ["spam_high", "spam"]})]
    inbound, _ = run(pipeline, rules, SPAM)
    assert inbound.verdict.action is Action.JUNK  # offline: no DMARC pass
    assert "not applied" in [o.effect for o in inbound.verdict.overrides
                             if o.kind == "mailflow-bypass"]
    internal, _ = run(pipeline, rules, SPAM, ip="10.0.0.5", rcpts=("b@customer.test",))
    assert internal.verdict.action is Action.DELIVER
    assert any(o.kind == "mailflow-bypass" and o.effect.endswith("-> deliver")
               for o in internal.verdict.overrides)


def test_bypass_never_lowers_malware(pipeline: Pipeline) -> None:
    rules = [rule("let-spam", {"bypass": ["spam_high", "spam"]})]
    result, _ = run(pipeline, rules, SPAM, ip="10.0.0.5", rcpts=("b@customer.test",),
                    tweak=lambda r: _with(r, Category.MALWARE, Action.QUARANTINE))
    assert result.verdict.action is Action.QUARANTINE


def test_redirect_and_bcc_recipients(pipeline: Pipeline) -> None:
    result, _ = run(pipeline, [rule("bcc", {"bcc": ["review@customer.test"]}),
                               rule("move", {"redirect": ["new@customer.test"]},
                                    **{"if": {"recipient": ["old@customer.test"]}})],
                    HAM, rcpts=("old@customer.test",))
    assert result.envelope.rcpt_to == ("new@customer.test", "review@customer.test")
    assert set(result.recipients) == {"new@customer.test", "review@customer.test"}
    assert all(v.recipient == r for r, v in result.recipients.items())


def test_before_stage_edits_are_scanned(pipeline: Pipeline) -> None:
    rules = [rule("pre", {"add_header": {"X-Pre": "1"}}, stage="before")]
    result, out = run(pipeline, rules, HAM)
    assert result.message.first_header("x-pre") == "1"
    assert list(header_values(out, "x-pre")) == [b"1"]
