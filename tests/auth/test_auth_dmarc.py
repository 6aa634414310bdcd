"""DMARC evaluator: RFC 7489 records and discovery, RFC 9989 tree walk, policies, alignment."""

from __future__ import annotations

import pytest

from mailsift.auth.dmarc import DmarcEvaluator, walk_targets
from mailsift.auth.dmarc_record import DmarcSyntaxError, is_dmarc, parse_record
from mailsift.core.auth import AuthStatus, DkimResult, SpfResult

ZONES = {
    "_dmarc.example.com": {"TXT": ["v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.com"]},
    "example.com": {"A": ["192.0.2.1"]},
    "sub.example.com": {"A": ["192.0.2.2"]},
    "_dmarc.strict.example": {"TXT": ["v=DMARC1; p=reject; adkim=s; aspf=s"]},
    "_dmarc.none.example": {"TXT": ["v=DMARC1; p=none"]},
    "_dmarc.np.example": {"TXT": ["v=DMARC1; p=quarantine; sp=none; np=reject"]},
    "exists.np.example": {"MX": ["10 mx.np.example"]},
    "_dmarc.pct0.example": {"TXT": ["v=DMARC1; p=reject; pct=0"]},
    "_dmarc.pct50.example": {"TXT": ["v=DMARC1; p=quarantine; pct=50"]},
    "_dmarc.testing.example": {"TXT": ["v=DMARC1; p=reject; t=y"]},
    "_dmarc.example.co.uk": {"TXT": ["v=DMARC1; p=reject"]},
    "_dmarc.my-shop.co.uk": {"TXT": ["v=DMARC1; p=reject"]},
    "_dmarc.shop.co.uk": {"TXT": ["v=DMARC1; p=none"]},
    # RFC 9989: a public suffix operator publishes psd=y.
    "_dmarc.bank.test": {"TXT": ["v=DMARC1; p=reject; psd=y"]},
    "_dmarc.corp.example": {"TXT": ["v=DMARC1; p=none"]},
    "_dmarc.unit.corp.example": {"TXT": ["v=DMARC1; p=reject; psd=n"]},
    "_dmarc.multi.example": {"TXT": ["v=DMARC1; p=reject", "v=DMARC1; p=none"]},
    "_dmarc.a.multi2.example": {"TXT": ["v=DMARC1; p=none", "v=DMARC1; p=reject"]},
    "_dmarc.multi2.example": {"TXT": ["v=DMARC1; p=quarantine"]},
    "_dmarc.syntax.example": {"TXT": ["v=DMARC1; p=bogus"]},
    "_dmarc.other.example": {"TXT": ["v=spf1 -all", "some verification token"]},
    "_dmarc.slow.example": {"behaviour": "timeout"},
    "_dmarc.deep.example": {"TXT": ["v=DMARC1; p=quarantine"]},
}


def spf(domain: str, result: AuthStatus = AuthStatus.PASS) -> SpfResult:
    return SpfResult(result, "mailfrom", domain, f"bounce@{domain}", "192.0.2.10")


def dkim(domain: str, result: AuthStatus = AuthStatus.PASS) -> DkimResult:
    return DkimResult(result, domain, "s1")


@pytest.fixture
def server(dns):
    return dns(ZONES)


@pytest.fixture
def ev(server, resolver_for):
    return DmarcEvaluator(resolver_for(server))


# --- record syntax -------------------------------------------------------------------------

def test_record_defaults_and_tags():
    rec = parse_record("v=DMARC1; p=quarantine; sp=reject; np=none; adkim=s; pct=20; t=y; psd=n")
    assert (rec.p, rec.sp, rec.np, rec.adkim, rec.aspf, rec.pct, rec.t, rec.psd) == (
        "quarantine", "reject", "none", "s", "r", 20, True, "n")
    bare = parse_record("v=DMARC1;p=reject")
    assert (bare.sp, bare.np, bare.adkim, bare.pct, bare.t, bare.psd) == (None, None, "r", 100,
                                                                          False, "u")


def test_invalid_p_with_rua_reads_as_none_but_without_rua_is_an_error():
    assert parse_record("v=DMARC1; p=blah; rua=mailto:x@example.com").p == "none"
    with pytest.raises(DmarcSyntaxError):
        parse_record("v=DMARC1; p=blah")
    with pytest.raises(DmarcSyntaxError):
        parse_record("v=DMARC1; p=reject; p=none")


def test_only_records_starting_with_v_dmarc1_count():
    assert is_dmarc("v=DMARC1; p=none") and is_dmarc("v = DMARC1 ;p=none")
    assert not is_dmarc("p=none; v=DMARC1")
    assert not is_dmarc("v=spf1 -all")


def test_bad_optional_values_fall_back_with_notes():
    rec = parse_record("v=DMARC1; p=reject; pct=150; adkim=x; sp=maybe")
    assert (rec.pct, rec.adkim, rec.sp) == (100, "r", None)
    assert len(rec.notes) == 3


def test_tree_walk_targets_jump_to_four_labels():
    assert list(walk_targets("a.b.c.d.e.example.com")) == [
        "a.b.c.d.e.example.com", "d.e.example.com", "e.example.com", "example.com", "com"]
    assert list(walk_targets("mail.example.com")) == ["mail.example.com", "example.com", "com"]


# --- evaluation ----------------------------------------------------------------------------

def test_aligned_spf_relaxed_passes(ev):
    res = ev.evaluate("example.com", spf("bounce.example.com"), [])
    assert res.result is AuthStatus.PASS and res.spf_aligned and not res.dkim_aligned
    assert res.disposition == "none" and res.policy == "reject"


def test_aligned_dkim_relaxed_passes(ev):
    res = ev.evaluate("example.com", spf("esp.example"), [dkim("mail.example.com")])
    assert res.result is AuthStatus.PASS and res.dkim_aligned
    assert res.aligned_dkim_domain == "mail.example.com"


def test_strict_alignment_rejects_subdomains(ev):
    res = ev.evaluate("strict.example", spf("mail.strict.example"),
                      [dkim("mail.strict.example")])
    assert res.result is AuthStatus.FAIL and res.disposition == "reject"
    ok = ev.evaluate("strict.example", spf("esp.example"), [dkim("strict.example")])
    assert ok.result is AuthStatus.PASS


def test_unaligned_pass_fails_with_reject(ev):
    res = ev.evaluate("example.com", spf("attacker.example"), [dkim("attacker.example")])
    assert res.result is AuthStatus.FAIL
    assert (res.policy, res.disposition, res.policy_domain) == ("reject", "reject", "example.com")
    assert "not aligned" in res.reason


def test_failing_identifiers_never_align(ev):
    res = ev.evaluate("example.com", spf("example.com", AuthStatus.FAIL),
                      [dkim("example.com", AuthStatus.FAIL)])
    assert res.result is AuthStatus.FAIL


def test_subdomain_policy_applies_to_subdomains_only(ev):
    sub = ev.evaluate("sub.example.com", spf("attacker.example"), [])
    assert (sub.policy, sub.disposition, sub.policy_domain) == (
        "quarantine", "quarantine", "example.com")
    org = ev.evaluate("example.com", spf("attacker.example"), [])
    assert org.policy == "reject"  # sp= must not apply to the organizational domain itself


def test_np_applies_to_non_existent_subdomains(ev):
    ghost = ev.evaluate("ghost.np.example", spf("attacker.example"), [])
    assert (ghost.policy, ghost.disposition) == ("reject", "reject")
    real = ev.evaluate("exists.np.example", spf("attacker.example"), [])
    assert (real.policy, real.disposition) == ("none", "none")
    top = ev.evaluate("np.example", spf("attacker.example"), [])
    assert top.policy == "quarantine"


def test_pct_zero_downgrades_and_t_y_downgrades(ev):
    pct0 = ev.evaluate("pct0.example", None, [])
    assert (pct0.result, pct0.policy, pct0.disposition, pct0.pct) == (
        AuthStatus.FAIL, "reject", "quarantine", 0)
    t = ev.evaluate("testing.example", None, [])
    assert (t.policy, t.disposition, t.testing) == ("reject", "quarantine", True)


def test_pct_sampling_is_deterministic_per_message(ev):
    outcomes = {}
    for i in range(40):
        key = f"<msg-{i}@example.com>"
        first = ev.evaluate("pct50.example", None, [], sample_key=key).disposition
        assert ev.evaluate("pct50.example", None, [], sample_key=key).disposition == first
        outcomes[key] = first
    assert set(outcomes.values()) == {"quarantine", "none"}


def test_multi_label_public_suffix_co_uk(ev):
    res = ev.evaluate("example.co.uk", spf("bounce.example.co.uk"), [])
    assert res.result is AuthStatus.PASS and res.org_domain == "example.co.uk"
    sub = ev.evaluate("mail.example.co.uk", None, [dkim("example.co.uk")])
    assert sub.result is AuthStatus.PASS and sub.policy_domain == "example.co.uk"


def test_hyphenated_domains_are_not_confused(ev):
    res = ev.evaluate("my-shop.co.uk", spf("shop.co.uk"), [dkim("shop.co.uk")])
    assert res.result is AuthStatus.FAIL and res.policy_domain == "my-shop.co.uk"
    assert res.org_domain == "my-shop.co.uk"
    own = ev.evaluate("news.my-shop.co.uk", spf("bounce.my-shop.co.uk"), [])
    assert own.result is AuthStatus.PASS


def test_rfc9989_psd_y_makes_the_org_domain_one_label_below(ev):
    assert ev.org_domain("mail.example.bank.test") == "example.bank.test"
    res = ev.evaluate("mail.example.bank.test", spf("bounce.example.bank.test"), [])
    assert res.result is AuthStatus.PASS
    assert (res.policy_domain, res.org_domain) == ("bank.test", "example.bank.test")
    other = ev.evaluate("mail.example.bank.test", spf("evil.bank.test"), [])
    assert other.result is AuthStatus.FAIL  # a sibling below the PSD is another organization


def test_rfc9989_psd_n_marks_the_org_domain(ev):
    assert ev.org_domain("x.unit.corp.example") == "unit.corp.example"
    res = ev.evaluate("x.unit.corp.example", spf("corp.example"), [])
    assert res.result is AuthStatus.FAIL and res.policy == "reject"
    # Without psd tags the record with the fewest labels is the org domain.
    assert ev.org_domain("a.b.corp.example") == "corp.example"


def test_tree_walk_queries_follow_rfc9989(server, ev):
    res = ev.evaluate("a.b.c.d.e.deep.example", None, [])
    assert res.policy_domain == "deep.example" and res.policy == "quarantine"
    asked = [q.name for q in server.queries if q.name.startswith("_dmarc.")]
    assert asked[:4] == ["_dmarc.a.b.c.d.e.deep.example", "_dmarc.d.e.deep.example",
                         "_dmarc.e.deep.example", "_dmarc.deep.example"]


def test_psl_discovery_asks_only_from_and_org_domain(server, resolver_for):
    ev = DmarcEvaluator(resolver_for(server), discovery="psl")
    res = ev.evaluate("a.b.c.d.e.deep.example", None, [])
    assert res.policy_domain == "deep.example"
    asked = [q.name for q in server.queries if q.name.startswith("_dmarc.")]
    assert asked == ["_dmarc.a.b.c.d.e.deep.example", "_dmarc.deep.example"]


def test_multiple_records_are_discarded(ev):
    res = ev.evaluate("multi.example", None, [])
    assert res.result is AuthStatus.PERMERROR and "multiple" in res.reason
    walked = ev.evaluate("a.multi2.example", None, [])
    assert walked.result is AuthStatus.FAIL and walked.policy_domain == "multi2.example"


def test_syntax_error_is_permerror_and_non_dmarc_txt_is_none(ev):
    assert ev.evaluate("syntax.example", None, []).result is AuthStatus.PERMERROR
    res = ev.evaluate("other.example", None, [])
    assert res.result is AuthStatus.NONE and res.reason == "no DMARC record"


def test_dns_timeout_is_temperror(ev):
    res = ev.evaluate("slow.example", spf("slow.example"), [])
    assert res.result is AuthStatus.TEMPERROR


def test_unaligned_result_with_spf_or_dkim_temperror_is_temperror(ev):
    res = ev.evaluate("example.com", spf("example.com", AuthStatus.TEMPERROR), [])
    assert res.result is AuthStatus.TEMPERROR and res.disposition == "none"
    res = ev.evaluate("example.com", None, [dkim("example.com", AuthStatus.TEMPERROR)])
    assert res.result is AuthStatus.TEMPERROR


def test_no_from_domain_is_none(ev):
    assert ev.evaluate("", None, []).result is AuthStatus.NONE
