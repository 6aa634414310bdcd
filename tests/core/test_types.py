from __future__ import annotations

import dataclasses

import pytest

import mailsift.core as core
from mailsift.core import Action, ArtifactState, Category, Envelope, Finding


def test_category_precedence_is_the_documented_order() -> None:
    assert [c.name for c in Category] == [
        "MALWARE", "PHISH_HIGH", "PHISH", "IMPERSONATION_USER", "IMPERSONATION_DOMAIN",
        "SPAM_HIGH", "SPOOF", "PHISH_SUSPECT", "SPAM", "BULK", "CLEAN",
    ]
    assert Category.MALWARE.rank < Category.PHISH.rank < Category.CLEAN.rank
    assert Category.PHISH_HIGH.family == Category.PHISH.family == "phish"
    assert Category.PHISH_SUSPECT.family == "phish"


def test_action_strictness_and_acceptance() -> None:
    assert Action.REJECT.strictness > Action.QUARANTINE.strictness > Action.JUNK.strictness
    assert not Action.REJECT.accepts and not Action.TEMPFAIL.accepts
    assert Action.QUARANTINE.accepts


def test_core_types_are_frozen() -> None:
    f = Finding(code="X", weight=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.code = "Y"  # type: ignore[misc]


def test_shadow_findings_do_not_act() -> None:
    assert Finding("X", 1.0).acts
    assert not Finding("X", 1.0, state=ArtifactState.SHADOW).acts


def test_envelope_helpers() -> None:
    env = Envelope(mail_from="Bounce@Example.ORG")
    assert env.mail_from_domain == "example.org"
    assert Envelope(mail_from="").mail_from_domain is None


def test_public_api_is_explicit_and_importable() -> None:
    for name in core.__all__:
        assert hasattr(core, name), name
    assert issubclass(core.DnsTempError, core.MailsiftError)
    assert issubclass(core.LimitExceeded, core.ParseError)


def test_rule_error_names_file_and_line() -> None:
    err = core.RuleError("bad regex", path="packs/x.toml", line=12)
    assert str(err) == "packs/x.toml:12: bad regex"


def test_slim_message_keeps_the_summary_and_drops_bodies_and_other_headers() -> None:
    from mailsift.parsing import parse_message

    raw = (b"From: Ann <ann@example.org>\r\nTo: bob@example.net\r\nSubject: Hi\r\n"
           b"Received: from somewhere\r\nX-Custom: 1\r\nMessage-ID: <a@example.org>\r\n"
           b"\r\nbody text http://example.com/x\r\n")
    msg = parse_message(raw)
    slim = msg.slim()
    assert slim.raw == b"" and slim.text == "" and slim.size == len(raw)
    assert slim.first_header("from") == "Ann <ann@example.org>"
    assert slim.first_header("to") == "bob@example.net" and slim.subject == "Hi"
    assert slim.header("received") == () and slim.header("x-custom") == ()
    assert {n.lower() for n, _ in slim.headers} <= core.message.SUMMARY_HEADERS
    assert [u.domain for u in slim.urls] == [u.domain for u in msg.urls] == ["example.com"]


def test_a_finding_speaks_for_a_family_or_none() -> None:
    assert Finding(code="X", weight=1.0, category=core.Family.PHISH).category == "phish"
    assert Finding(code="X", weight=1.0, category="spam").category == "spam"
    with pytest.raises(ValueError, match="category 'phsh' is not a family"):
        Finding(code="X", weight=1.0, category="phsh")
