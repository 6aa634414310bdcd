"""Compiled rule sets: every matcher kind, meta logic, states, overrides, versions."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mailsift.core.errors import ConfigError, RuleError
from mailsift.core.findings import ArtifactState
from mailsift.core.message import ParsedMessage
from mailsift.rules import RuleSet, parse_pack_text

Factory = Callable[..., ParsedMessage]
HEAD = '[pack]\nname = "t"\ndefault_state = "active"\n\n'


def ruleset(rules: str, **kwargs: object) -> RuleSet:
    return RuleSet([parse_pack_text(HEAD + rules, "t.toml")], **kwargs)  # type: ignore[arg-type]


def rule(rule_id: str, matcher: str, extra: str = "") -> str:
    return (f'[[rule]]\nid = "{rule_id}"\ndescription = "{rule_id} test"\n'
            f'category = "spam"\nweight = 1.0\n{extra}{matcher}\n\n')


def ids(rs: RuleSet, msg: ParsedMessage) -> set[str]:
    return {hit.rule.id for hit in rs.evaluate(msg)}


def test_header_matchers(mkmsg: Factory) -> None:
    rs = ruleset(
        rule("SUBJ", 'header = "Subject"\npattern = "/free\\\\s+money/i"')
        + rule("FROM_DOM", 'header = "From:domain"\npattern = "/^evil\\\\.example$/"')
        + rule("FROM_NAME", 'header = "From:name"\npattern = "/bank/i"')
        + rule("FROM_ADDR", 'header = "From:addr"\npattern = "/^boss@/"')
        + rule("RT_DOM", 'header = "Reply-To:domain"\npattern = "/^other\\\\.test$/"')
        + rule("ALL_HDRS", 'header = "ALL"\npattern = "/^X-Campaign: /m"')
        + rule("HAS_XC", 'header = "X-Campaign"\nexists = true')
        + rule("NO_DATE", 'header = "Date"\nabsent = true')
        + rule("RP_DOM", 'header = "Return-Path:domain"\npattern = "/bounce\\\\.test/"')
    )
    msg = mkmsg(
        subject="FREE  Money inside", from_="Big Bank <boss@evil.example>",
        headers=[("Reply-To", "x@other.test"), ("X-Campaign", "42"),
                 ("Return-Path", "<b@bounce.test>")],
        omit=["Date"],
    )
    assert ids(rs, msg) == {"SUBJ", "FROM_DOM", "FROM_NAME", "FROM_ADDR", "RT_DOM", "ALL_HDRS",
                            "HAS_XC", "NO_DATE", "RP_DOM"}
    assert ids(rs, mkmsg()) == set()


def test_header_evidence_names_the_field(mkmsg: Factory) -> None:
    rs = ruleset(rule("SUBJ", 'header = "Subject"\npattern = "/money/i"'))
    (hit,) = rs.evaluate(mkmsg(subject="Easy MONEY now"))
    assert hit.evidence == ("Subject: Easy MONEY now",)


def test_body_matches_text_and_rendered_html_across_lines(mkmsg: Factory) -> None:
    rs = ruleset(rule("PHRASE", 'body = "/verify\\\\s+your\\\\s+account/i"'))
    assert ids(rs, mkmsg(text="Please verify\nyour\n  ACCOUNT today")) == {"PHRASE"}
    html = "<p>Please <b>verify</b> your <i>account</i></p>"
    assert ids(rs, mkmsg(text=None, html=html)) == {"PHRASE"}
    (hit,) = rs.evaluate(mkmsg(text="so verify your account"))
    assert hit.evidence == ("verify your account",)


def test_rawbody_html_and_raw(mkmsg: Factory) -> None:
    rs = ruleset(
        rule("RAWB", 'rawbody = "/<blink>/"')
        + rule("HTML_ONLY", 'html = "/<marquee/i"')
        + rule("RAW", 'raw = "/^X-Odd-Header: yes/m"')
    )
    msg = mkmsg(text="plain", html="<blink>x</blink><MARQUEE>y</MARQUEE>",
                headers=[("X-Odd-Header", "yes")])
    assert ids(rs, msg) == {"RAWB", "HTML_ONLY", "RAW"}
    assert ids(rs, mkmsg(text="<blink> in plain text")) == {"RAWB"}


def test_uri_and_host(mkmsg: Factory) -> None:
    rs = ruleset(
        rule("URI", 'uri = "/\\\\/login\\\\.php$/"')
        + rule("HOST", 'uri_host = "/^(?:www\\\\.)?bad\\\\.test$/"')
    )
    msg = mkmsg(text="go to http://www.bad.test/a/login.php now")
    assert ids(rs, msg) == {"URI", "HOST"}
    (uri_hit,) = [h for h in rs.evaluate(msg) if h.rule.id == "URI"]
    assert uri_hit.evidence == ("http://www.bad.test/a/login.php",)
    assert ids(rs, mkmsg(text="no links here")) == set()


def test_attachment_name_and_type(mkmsg: Factory) -> None:
    rs = ruleset(
        rule("ANAME", 'attachment_name = "/\\\\.xlsm$/i"')
        + rule("ATYPE", 'attachment_type = "/^application\\\\/x-msdownload$/"')
    )
    exe = b"MZ\x90\x00" + b"\x00" * 200
    msg = mkmsg(attachments=[("Report.XLSM", b"PK\x03\x04data", "application/octet-stream"),
                             ("tool.bin", exe, "application/octet-stream")])
    assert ids(rs, msg) == {"ANAME", "ATYPE"}


def test_check_matcher_with_args(mkmsg: Factory) -> None:
    rs = ruleset(rule("MANY", 'check = "many_recipients"\nargs = { min = 3 }'))
    assert ids(rs, mkmsg(to="a@x.test, b@x.test, c@x.test")) == {"MANY"}
    assert ids(rs, mkmsg(to="a@x.test, b@x.test")) == set()


def test_meta_and_subrules(mkmsg: Factory) -> None:
    sub = ('[[rule]]\nid = "__WORD_A"\ndescription = "a"\nbody = "/alpha/"\n\n'
           '[[rule]]\nid = "__WORD_B"\ndescription = "b"\nbody = "/bravo/"\n\n'
           '[[rule]]\nid = "__WORD_C"\ndescription = "c"\nbody = "/charlie/"\n\n')
    rs = ruleset(
        sub
        + rule("BOTH", 'meta = "__WORD_A && __WORD_B"')
        + rule("TWO_OF_THREE", 'meta = "(__WORD_A + __WORD_B + __WORD_C) >= 2"')
        + rule("A_NOT_C", 'meta = "__WORD_A && !__WORD_C"')
        + rule("META_OF_META", 'meta = "BOTH || (A_NOT_C && __WORD_C)"')
    )
    assert "__WORD_A" not in rs.codes and "BOTH" in rs.codes
    assert ids(rs, mkmsg(text="alpha bravo")) == {"BOTH", "TWO_OF_THREE", "A_NOT_C",
                                                  "META_OF_META"}
    assert ids(rs, mkmsg(text="alpha charlie")) == {"TWO_OF_THREE"}
    assert ids(rs, mkmsg(text="alpha")) == {"A_NOT_C"}
    assert ids(rs, mkmsg(text="nothing")) == set()
    both = next(h for h in rs.evaluate(mkmsg(text="alpha bravo")) if h.rule.id == "BOTH")
    assert both.evidence == ("__WORD_A: alpha", "__WORD_B: bravo")


def test_meta_order_is_independent_of_file_order(mkmsg: Factory) -> None:
    rs = ruleset(rule("OUTER", 'meta = "INNER"') + rule("INNER", 'body = "/zulu/"'))
    assert ids(rs, mkmsg(text="zulu")) == {"OUTER", "INNER"}


def test_findings_carry_pack_version_and_state(mkmsg: Factory) -> None:
    rs = ruleset(rule("LOUD", 'body = "/zulu/"')
                 + rule("QUIET", 'body = "/zulu/"', extra='state = "shadow"\n')
                 + rule("OLD", 'body = "/zulu/"', extra='state = "retired"\n'))
    findings = {f.code: f for f in rs.findings(mkmsg(text="zulu"))}
    pack_version = rs.versions()["rules:t"]
    for finding in findings.values():
        assert finding.artifact == "rules:t" and finding.version == pack_version
        assert finding.detector == "rules" and finding.category == "spam"
        assert finding.description.endswith("test")
    assert findings["LOUD"].state is ArtifactState.ACTIVE and findings["LOUD"].acts
    assert findings["QUIET"].state is ArtifactState.SHADOW and not findings["QUIET"].acts
    assert "OLD" not in findings  # retired rules are kept for the record, not reported
    assert rs.rules["QUIET"].state is ArtifactState.SHADOW


def test_weights_and_disabled(mkmsg: Factory) -> None:
    text = rule("ONE", 'body = "/zulu/"') + rule("TWO", 'body = "/zulu/"') \
        + rule("BOTH", 'meta = "ONE && TWO"')
    rs = ruleset(text, disabled=["TWO"], weights={"ONE": 7.5})
    findings = {f.code: f for f in rs.findings(mkmsg(text="zulu"))}
    assert set(findings) == {"ONE"} and findings["ONE"].weight == 7.5
    assert "TWO" not in rs.codes and rs.rules["ONE"].weight == 7.5
    assert "rules:overrides" in rs.versions()
    assert "rules:overrides" not in ruleset(text).versions()


def test_unknown_ids_in_config_fail() -> None:
    with pytest.raises(ConfigError, match="NOPE"):
        ruleset(rule("ONE", 'body = "/x/"'), disabled=["NOPE"])
    with pytest.raises(ConfigError, match="NOPE"):
        ruleset(rule("ONE", 'body = "/x/"'), weights={"NOPE": 1.0})


def test_duplicate_ids_across_packs() -> None:
    one = parse_pack_text(HEAD + rule("SAME", 'body = "/x/"'), "a.toml")
    two = parse_pack_text(HEAD.replace('"t"', '"u"') + rule("SAME", 'body = "/y/"'), "b.toml")
    with pytest.raises(RuleError, match="duplicate rule id SAME") as info:
        RuleSet([one, two])
    assert info.value.path == "b.toml" and info.value.line == 6


def test_empty_views_are_skipped(mkmsg: Factory) -> None:
    rs = ruleset(rule("ANY_URL", 'uri = "/.*/"') + rule("ANY_ATT", 'attachment_name = "/.*/"'))
    assert ids(rs, mkmsg(text="no links")) == set()


def test_rule_metadata_for_rollout(mkmsg: Factory) -> None:
    rs = ruleset(rule("ONE", 'body = "/x/"', extra='tags = ["a", "b"]\n'))
    meta = rs.rules["ONE"]
    assert (meta.pack, meta.kind, meta.tags, meta.artifact) == ("t", "body", ("a", "b"), "rules:t")
    assert len(meta.version) == 12 and meta.pack_version == rs.versions()["rules:t"]


def test_rollout_states_override_the_file(mkmsg: Factory) -> None:
    text = rule("LOUD", 'body = "/zulu/"') + rule("QUIET", 'body = "/zulu/"',
                                                   extra='state = "shadow"\n')
    promoted = ruleset(text, states={"QUIET": ArtifactState.ACTIVE,
                                     "LOUD": ArtifactState.SHADOW})
    got = {f.code: f.state for f in promoted.findings(mkmsg(text="zulu"))}
    assert got == {"QUIET": ArtifactState.ACTIVE, "LOUD": ArtifactState.SHADOW}
    staged = ruleset(text, states={"QUIET": ArtifactState.ACTIVE},
                     pack_state=ArtifactState.SHADOW)
    assert {f.state for f in staged.findings(mkmsg(text="zulu"))} == {ArtifactState.SHADOW}


def _states(rs: RuleSet, msg: ParsedMessage) -> dict[str, ArtifactState]:
    return {f.code: f.state for f in rs.findings(msg)}


def test_a_meta_acts_no_sooner_than_the_rules_that_make_it_hold(mkmsg: Factory) -> None:
    shadow, canary = 'state = "shadow"\n', 'state = "canary"\n'
    rs = ruleset(rule("ON", 'body = "/zulu/"')
                 + rule("NEW", 'body = "/zulu/"', extra=shadow)
                 + '[[rule]]\nid = "__NEW_WORD"\ndescription = "sub"\nstate = "shadow"\n'
                   'body = "/zulu/"\n\n'
                 + rule("TRYING", 'body = "/zulu/"', extra=canary)
                 + rule("VIA_NEW", 'meta = "ON && NEW"')
                 + rule("VIA_SUB", 'meta = "__NEW_WORD"')
                 + rule("VIA_META", 'meta = "VIA_NEW"')
                 + rule("VIA_CANARY", 'meta = "ON && TRYING"')
                 + rule("EITHER", 'meta = "ON || NEW"')
                 + rule("QUIET_META", 'meta = "ON && NEW"', extra=shadow))
    got = _states(rs, mkmsg(text="zulu"))
    assert got["VIA_NEW"] is ArtifactState.SHADOW  # holds only with the shadow rule counted
    assert got["VIA_SUB"] is ArtifactState.SHADOW and got["VIA_META"] is ArtifactState.SHADOW
    assert got["VIA_CANARY"] is ArtifactState.CANARY
    assert got["EITHER"] is ArtifactState.ACTIVE  # holds without it too
    assert got["QUIET_META"] is ArtifactState.SHADOW
    promoted = ruleset(rule("ON", 'body = "/zulu/"') + rule("NEW", 'body = "/zulu/"')
                       + rule("VIA_NEW", 'meta = "ON && NEW"'))
    assert _states(promoted, mkmsg(text="zulu"))["VIA_NEW"] is ArtifactState.ACTIVE


def test_a_shadow_rule_cannot_keep_an_active_meta_from_acting(mkmsg: Factory) -> None:
    rs = ruleset(rule("ON", 'body = "/zulu/"')
                 + rule("NEW", 'body = "/zulu/"', extra='state = "shadow"\n')
                 + rule("UNLESS_NEW", 'meta = "ON && !NEW"'))
    got = _states(rs, mkmsg(text="zulu"))
    assert got["UNLESS_NEW"] is ArtifactState.ACTIVE and got["NEW"] is ArtifactState.SHADOW
    assert "UNLESS_NEW" not in _states(rs, mkmsg(text="yankee"))
