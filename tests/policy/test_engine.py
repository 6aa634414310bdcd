"""The precedence table, one test per step (docs/precedence.md)."""

from __future__ import annotations

from mailsift.config.schema import PolicySettings, RecipientPolicy
from mailsift.core.auth import AuthResults, AuthStatus, DmarcResult
from mailsift.core.findings import ArtifactState, Finding
from mailsift.core.lists import ListEntry, ListSnapshot
from mailsift.core.verdict import Action, Category, DecisionStep
from mailsift.policy import MessageFacts, PolicyInput, decide

NOW = 1_800_000_000.0


def f(code: str, family: str | None, weight: float, **kw: object) -> Finding:
    return Finding(code=code, weight=weight, category=family, detector="test", **kw)  # type: ignore[arg-type]


def inp(*findings: Finding, facts: MessageFacts | None = None, lists: tuple[ListEntry, ...] = (),
        auth: AuthResults | None = None, **kw: object) -> PolicyInput:
    return PolicyInput(findings=findings, facts=facts or MessageFacts(), auth=auth,
                       lists=ListSnapshot(entries=lists, version="v1"), now=NOW, **kw)  # type: ignore[arg-type]


S = PolicySettings()
FACTS = MessageFacts(from_addr="news@vendor.example", from_domain="vendor.example",
                     client_ip="198.51.100.7", auth_aligned=True)


def test_clean_when_nothing_fires() -> None:
    v = decide(inp(f("INFO", None, 3.0)), S)
    assert (v.category, v.action, v.decided_by) == (Category.CLEAN, Action.DELIVER,
                                                    DecisionStep.DETECTION)


def test_first_category_in_precedence_wins_and_scores_never_cross_families() -> None:
    v = decide(inp(f("P1", "phish", 4.0), f("S1", "spam", 30.0), f("S2", "malware", 1.0)), S)
    assert v.category is Category.MALWARE
    # lots of spam weight never turns into phishing
    v = decide(inp(f("P1", "phish", 4.0), f("S1", "spam", 30.0)), S)
    assert v.category is Category.SPAM_HIGH
    assert v.score == 30.0
    assert [r.code for r in v.reasons] == ["S1"]


def test_high_confidence_thresholds() -> None:
    assert decide(inp(f("P", "phish", 6.0)), S).category is Category.PHISH
    assert decide(inp(f("P", "phish", 12.0)), S).category is Category.PHISH_HIGH
    assert decide(inp(f("S", "spam", 6.0)), S).action is Action.JUNK


def test_phish_evidence_below_the_quarantine_threshold_is_junked_as_suspected_phishing() -> None:
    # one link trick or wording rule (at most 3) says nothing on its own
    assert decide(inp(f("LINK_TRICK", "phish", 3.0)), S).category is Category.CLEAN
    v = decide(inp(f("WORDING", "phish", 2.0), f("LINK_TRICK", "phish", 3.0),
                   f("S", "spam", 2.0)), S)
    assert (v.category, v.action) == (Category.PHISH_SUSPECT, Action.JUNK)
    assert [r.code for r in v.reasons] == ["WORDING", "LINK_TRICK"]  # phish findings only
    assert v.explanation.startswith("phish_suspect: phish score 5 >= 4")
    # more phish evidence still quarantines; spam evidence never adds to it
    assert decide(inp(f("P", "phish", 6.0)), S).category is Category.PHISH
    assert decide(inp(f("P", "phish", 3.0), f("S", "spam", 5.0)), S).category is Category.CLEAN
    # an authenticated sender allow lowers it (as it lowers PHISH); an IP allow does not
    allow = ListEntry(kind="domain", value="vendor.example", action="allow")
    findings = (f("WORDING", "phish", 2.0), f("LINK_TRICK", "phish", 3.0))
    assert decide(inp(*findings, facts=FACTS, lists=(allow,)), S).category is Category.CLEAN
    ip_allow = ListEntry(kind="ip", value="198.51.100.7", action="allow")
    v = decide(inp(*findings, facts=FACTS, lists=(ip_allow,)), S)
    assert v.category is Category.PHISH_SUSPECT


def test_step0_guardrail_beats_everything() -> None:
    v = decide(inp(f("PARSE_DEPTH_LIMIT", None, 0.0, evidence=("deep",)), f("P", "phish", 20)), S)
    assert (v.action, v.decided_by) == (Action.REJECT, DecisionStep.GUARDRAIL)
    assert "PARSE_DEPTH_LIMIT" in v.explanation


def test_step1_secops_mailbox_and_simulation_bypass() -> None:
    s = PolicySettings.model_validate({"advanced_delivery": {
        "secops_mailboxes": ["soc@example.net"], "simulation_domains": ["sim.example"],
        "simulation_ips": ["203.0.113.0/24"]}})
    v = decide(inp(f("M", "malware", 5.0)), s, "SOC@example.net")
    assert (v.action, v.decided_by) == (Action.DELIVER, DecisionStep.BYPASS)
    sim = MessageFacts(from_domain="sim.example", client_ip="203.0.113.9")
    assert decide(inp(f("P", "phish", 20.0), facts=sim), s, "x@y").decided_by is DecisionStep.BYPASS
    wrong_ip = MessageFacts(from_domain="sim.example", client_ip="192.0.2.1")
    assert decide(inp(f("P", "phish", 20.0), facts=wrong_ip), s, "x@y").action is Action.QUARANTINE


def test_step3_block_raises_and_beats_allow() -> None:
    entries = (ListEntry("domain", "vendor.example", "block"),
               ListEntry("sender", "news@vendor.example", "allow"))
    v = decide(inp(facts=FACTS, lists=entries), S)
    assert (v.category, v.decided_by) == (Category.SPAM_HIGH, DecisionStep.ADMIN_BLOCK)
    v = decide(inp(facts=MessageFacts(hashes=("ab" * 32,)),
                   lists=(ListEntry("hash", "AB" * 32, "block"),)), S)
    assert v.category is Category.MALWARE


def test_step4_allow_needs_aligned_auth() -> None:
    allow = (ListEntry("domain", "vendor.example", "allow", entry_id="7"),)
    v = decide(inp(f("S", "spam", 8.0), facts=FACTS, lists=allow), S)
    assert (v.category, v.action, v.decided_by) == (Category.CLEAN, Action.DELIVER,
                                                    DecisionStep.ADMIN_ALLOW)
    forged = MessageFacts(from_addr="news@vendor.example", from_domain="vendor.example")
    v = decide(inp(f("S", "spam", 8.0), facts=forged, lists=allow), S)
    assert v.category is Category.SPAM
    assert v.overrides[0].effect == "not applied"


def test_step4_allow_never_lowers_malware_or_high_phish_but_incident_allow_does() -> None:
    allow = (ListEntry("domain", "vendor.example", "allow"),)
    for finding, category in ((f("M", "malware", 1.0), Category.MALWARE),
                              (f("P", "phish", 12.0), Category.PHISH_HIGH)):
        assert decide(inp(finding, facts=FACTS, lists=allow), S).category is category
    incident = (ListEntry("domain", "vendor.example", "allow", scope="incident:3",
                          expires_at=NOW + 3600, note="INC-3 mass false positive"),)
    v = decide(inp(f("P", "phish", 12.0), facts=FACTS, lists=incident), S)
    assert (v.category, v.decided_by) == (Category.CLEAN, DecisionStep.ADMIN_ALLOW)
    assert v.overrides[0].kind == "incident_allow"
    expired = (ListEntry("domain", "vendor.example", "allow", scope="incident:3",
                         expires_at=NOW - 1),)
    assert decide(inp(f("P", "phish", 12.0), facts=FACTS, lists=expired),
                  S).category is Category.PHISH_HIGH


def test_step5_user_lists_only_choose_among_spam_bulk_clean() -> None:
    safe = (ListEntry("sender", "news@vendor.example", "allow", scope="user:bob@example.net"),)
    assert decide(inp(f("B", "bulk", 7.0), facts=FACTS, lists=safe), S,
                  "bob@example.net").category is Category.CLEAN
    # other recipients are not affected
    assert decide(inp(f("B", "bulk", 7.0), facts=FACTS, lists=safe), S,
                  "eve@example.net").category is Category.BULK
    # a user's safe sender never rescues phishing
    assert decide(inp(f("P", "phish", 7.0), facts=FACTS, lists=safe), S,
                  "bob@example.net").category is Category.PHISH
    blocked = (ListEntry("sender", "news@vendor.example", "block", scope="user:bob@example.net"),)
    v = decide(inp(facts=FACTS, lists=blocked), S, "bob@example.net")
    assert (v.category, v.action, v.decided_by) == (Category.SPAM, Action.JUNK,
                                                    DecisionStep.USER_LIST)


def test_step6_first_matching_recipient_policy_never_merged() -> None:
    s = PolicySettings(policies=(
        RecipientPolicy(name="execs", recipients=("ceo@example.net",), preset="strict"),
        RecipientPolicy(name="sales", domains=("example.net",), actions={"spam": "deliver"}),
    ))
    v = decide(inp(f("S", "spam", 16.0)), s, "ceo@example.net")
    assert (v.action, v.policy) == (Action.QUARANTINE, "execs (strict)")
    v = decide(inp(f("S", "spam", 7.0)), s, "ann@example.net")
    assert (v.action, v.policy) == (Action.DELIVER, "sales (standard)")
    assert decide(inp(f("S", "spam", 7.0)), s, "x@other.example").action is Action.JUNK


def test_dmarc_reject_is_honoured_for_spoofs() -> None:
    auth = AuthResults(dmarc=DmarcResult(AuthStatus.FAIL, "bank.example", policy="reject",
                                         disposition="reject"))
    v = decide(inp(f("AUTH_COMPAUTH_FAIL", "spoof", 1.0), auth=auth), S)
    assert (v.category, v.action) == (Category.SPOOF, Action.REJECT)
    junk = PolicySettings(dmarc_enforcement="junk")
    assert decide(inp(f("AUTH_COMPAUTH_FAIL", "spoof", 1.0), auth=auth), junk).action is Action.JUNK


def test_step7_shadow_never_acts_canary_only_in_scope_monitor_tags() -> None:
    shadow = f("NEW_RULE", "phish", 20.0, state=ArtifactState.SHADOW, artifact="rules:x")
    v = decide(inp(shadow), S)
    assert v.category is Category.CLEAN and v.findings == (shadow,)
    canary = f("NEW_RULE", "phish", 20.0, state=ArtifactState.CANARY, artifact="rules:x")
    scopes = {"rules:x": ("@pilot.example",)}
    assert decide(inp(canary, canary_scopes=scopes), S,
                  "a@pilot.example").category is Category.PHISH_HIGH
    assert decide(inp(canary, canary_scopes=scopes), S, "a@prod.example").category is Category.CLEAN
    monitor = PolicySettings(monitor=True)
    v = decide(inp(f("P", "phish", 20.0)), monitor)
    assert (v.category, v.action, v.decided_by) == (Category.PHISH_HIGH, Action.TAG,
                                                    DecisionStep.ROLLOUT)


def test_step8_detector_error_is_never_clean() -> None:
    err = f("DETECTOR_ERROR", None, 0.0, evidence=("rules", "boom"))
    v = decide(inp(err), S)
    assert (v.action, v.decided_by) == (Action.TAG, DecisionStep.DETECTOR_ERROR)
    strict = PolicySettings(on_error="tempfail")
    assert decide(inp(err), strict).action is Action.TEMPFAIL
    # an error does not lower a category that other detectors established
    assert decide(inp(err, f("P", "phish", 7.0)), strict).action is Action.QUARANTINE


def test_explanation_names_findings_and_policy() -> None:
    v = decide(inp(f("CRED", "phish", 4.0), f("LINK", "phish", 3.0)), S)
    assert "phish score 7 >= 6" in v.explanation
    assert "CRED (4)" in v.explanation and "default (standard)" in v.explanation


def test_canary_pack_replaces_active_version_in_scope_only() -> None:
    old = f("INVOICE", "phish", 7.0, artifact="rules:acme", version="v1")
    new = f("INVOICE2", "spam", 1.0, state=ArtifactState.CANARY, artifact="rules:acme",
            version="v2")
    scopes = {"rules:acme": ("@pilot.example",)}
    # in scope: v2 replaces v1 (so v1's phishing finding does not act)
    v = decide(inp(old, new, canary_scopes=scopes), S, "a@pilot.example")
    assert v.category is Category.CLEAN
    assert any(o.kind == "canary" for o in v.overrides)
    # out of scope: v1 acts as before
    assert decide(inp(old, new, canary_scopes=scopes), S, "a@prod.example").category \
        is Category.PHISH


def test_percentage_canary_is_stable_per_recipient() -> None:
    rule = f("NEW", "phish", 7.0, state=ArtifactState.CANARY, artifact="rules:acme")
    scopes = {"rule:NEW": ("%50",)}
    picked = [decide(inp(rule, canary_scopes=scopes), S, f"user{i}@example.net").category
              is Category.PHISH for i in range(400)]
    assert 140 < sum(picked) < 260
    again = [decide(inp(rule, canary_scopes=scopes), S, f"user{i}@example.net").category
             is Category.PHISH for i in range(400)]
    assert picked == again
