"""Every condition of a flow rule, alone and combined (all / any / except, stop, priority)."""

from __future__ import annotations

from typing import Any

import pytest

from mailsift.config.mailflow import FlowRule, MailflowSettings
from mailsift.core.auth import AuthResults, AuthStatus, DkimResult, DmarcResult, SpfResult
from mailsift.core.findings import Finding
from mailsift.core.verdict import Action, Category, DecisionStep, Verdict
from mailsift.mailflow.engine import FlowFacts, RuleSet, evaluate
from mailsift.parsing.parser import parse_message
from mailsift.testing.messages import make_message

RAW = make_message(
    subject="Invoice 2026-11 overdue", from_="Mallory <mallory@evil.example>",
    to="cfo@customer.test", text="Please wire the payment today.\n",
    html="<p>Please wire the payment today.</p>",
    headers={"X-Mailer": "BulkSender 9.1", "List-Id": "<news.example>"},
    attachments=[("invoice.ISO", b"\0" * 100, "application/x-iso9660-image")])
VERDICT = Verdict(Category.PHISH, Action.QUARANTINE, 7.5, DecisionStep.DETECTION, "x",
                  findings=(Finding("RULE_WIRE_FRAUD", 4.0, category="phish"),))
AUTH = AuthResults(spf=SpfResult(AuthStatus.SOFTFAIL, "mfrom", "evil.example"),
                   dkim=(DkimResult(AuthStatus.FAIL, "evil.example", "s1"),),
                   dmarc=DmarcResult(AuthStatus.FAIL, "evil.example"))


def facts(**over: Any) -> FlowFacts:
    base: dict[str, Any] = dict(message=parse_message(RAW), mail_from="bounce@evil.example",
                                rcpt_to=("cfo@customer.test",), direction="inbound",
                                client_ip="198.51.100.7", size=len(RAW), verdict=VERDICT,
                                auth=AUTH)
    base.update(over)
    return FlowFacts(**base)


def matches(conditions: dict[str, Any], groups: dict[str, Any] | None = None,
            **over: Any) -> bool:
    rule = {"name": "r", "if": conditions, "then": {"add_header": {"X-R": "1"}}}
    rs = RuleSet(MailflowSettings.model_validate({"rules": [rule], "groups": groups or {}}))
    return bool(evaluate(rs.after, facts(vocabulary=rs.vocabulary, **over)))


@pytest.mark.parametrize(("words", "expected"), [(["WIRE the"], True), (["lottery"], False)])
def test_words_without_the_automaton(words: list[str], expected: bool) -> None:
    rule = {"name": "r", "if": {"subject_or_body_words": words}, "then": {"junk": True}}
    rs = RuleSet(MailflowSettings.model_validate({"rules": [rule]}))
    assert bool(evaluate(rs.after, facts())) is expected


@pytest.mark.parametrize(("conditions", "expected"), [
    ({"sender": ["mallory@evil.example"]}, True),       # the From address
    ({"sender": ["bounce@evil.example"]}, True),        # the envelope sender
    ({"sender": ["@evil.example"]}, True),
    ({"sender": ["example"]}, True),                    # a parent domain
    ({"sender": ["@customer.test"]}, False),
    ({"sender": ["group:bad"]}, True),
    ({"recipient": ["cfo@customer.test"]}, True),
    ({"recipient": ["customer.test"]}, True),
    ({"recipient": ["ceo@customer.test"]}, False),
    ({"direction": "inbound"}, True),
    ({"direction": ["outbound", "internal"]}, False),
    ({"header_contains": {"X-Mailer": "bulksender"}}, True),
    ({"header_contains": {"X-Mailer": "Outlook"}}, False),
    ({"header_contains": {"X-Absent": ""}}, False),
    ({"header_regex": {"X-Mailer": r"^BulkSender \d+\.\d+$"}}, True),
    ({"header_regex": {"List-Id": r"^<other"}}, False),
    ({"subject_words": ["INVOICE"]}, True),
    ({"subject_words": ["lottery"]}, False),
    ({"body_words": ["wire the payment"]}, True),
    ({"body_words": ["overdue"]}, False),
    ({"subject_or_body_words": ["overdue"]}, True),
    ({"attachment_name": ["*.iso"]}, True),
    ({"attachment_name": ["*.exe"]}, False),
    ({"attachment_extension": [".iso", "img"]}, True),
    ({"attachment_extension": ["pdf"]}, False),
    ({"attachment_type": ["application/x-iso9660-image"]}, True),
    ({"attachment_type": ["application/pdf"]}, False),
    ({"size_over": 100}, True),
    ({"size_over": 10_000_000}, False),
    ({"size_under": 10_000_000}, True),
    ({"size_under": 10}, False),
    ({"category": ["phish", "phish_high"]}, True),
    ({"category": ["spam"]}, False),
    ({"score_at_least": 7.5}, True),
    ({"score_at_least": 7.6}, False),
    ({"finding": ["RULE_WIRE_FRAUD"]}, True),
    ({"finding": ["RULE_GTUBE"]}, False),
    ({"spf": ["softfail", "fail"]}, True),
    ({"spf": ["pass"]}, False),
    ({"dkim": ["fail"]}, True),
    ({"dkim": ["pass"]}, False),
    ({"dmarc": ["fail"]}, True),
    ({"dmarc": ["pass"]}, False),
    ({"authenticated": False}, True),
    ({"authenticated": True}, False),
    ({"client_ip": ["198.51.100.0/24"]}, True),
    ({"client_ip": ["10.0.0.0/8", "2001:db8::/32"]}, False),
    ({"direction": "inbound", "sender": "@evil.example", "size_over": 10}, True),   # all
    ({"direction": "inbound", "sender": "@customer.test"}, False),
])
def test_condition(conditions: dict[str, Any], expected: bool) -> None:
    assert matches(conditions, {"bad": ["@evil.example"]}) is expected


def test_verdict_conditions_do_not_match_before_detection() -> None:
    assert not matches({"category": ["phish"]}, verdict=None, auth=None)
    assert not matches({"spf": ["softfail"]}, verdict=None, auth=None)


def test_authenticated_means_dmarc_or_compauth_pass() -> None:
    ok = AuthResults(dmarc=DmarcResult(AuthStatus.PASS, "evil.example"))
    assert matches({"authenticated": True}, auth=ok)


def rule(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "then": {"add_header": {"X-" + name: "1"}}, **kw}


def names(rules: list[dict[str, Any]]) -> list[str]:
    rs = RuleSet(MailflowSettings.model_validate({"rules": rules}))
    return [h.name for h in evaluate(rs.after, facts())]


def test_any_needs_one_and_except_vetoes() -> None:
    assert names([rule("a", any={"sender": "@nowhere.test", "subject_words": "invoice"})]) == ["a"]
    assert names([rule("a", any={"sender": "@nowhere.test", "subject_words": "hello"})]) == []
    assert names([rule("a", **{"if": {"direction": "inbound"},
                              "except": {"recipient": "cfo@customer.test"}})]) == []
    assert names([rule("a", **{"except": {"recipient": "ceo@customer.test"}})]) == ["a"]


def test_priority_then_file_order_and_stop() -> None:
    rules = [rule("late", priority=20), rule("first", priority=1), rule("same", priority=20),
             rule("stopper", priority=5, stop=True), rule("never", priority=30)]
    assert names(rules) == ["first", "stopper"]
    rules[3]["if"] = {"direction": "outbound"}  # the stop rule does not match: no stop
    assert names(rules) == ["first", "late", "same", "never"]


def test_stages_are_kept_apart() -> None:
    settings = MailflowSettings.model_validate({"rules": [
        rule("b", stage="before"), rule("a")]})
    rs = RuleSet(settings)
    assert [r.rule.name for r in rs.before] == ["b"] and [r.rule.name for r in rs.after] == ["a"]
    assert isinstance(settings.rules[0], FlowRule)
