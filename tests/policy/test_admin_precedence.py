"""Issue 17 regressions: verdicts that must obey the admin and the precedence in docs/precedence.md.

Each test names the numbered defect of the issue it guards (#7 block, #8 incident allow,
#9 impersonation vs spam, #10 one source of category names).
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mailsift.config.schema import CATEGORY_NAMES, PolicySettings, RecipientPolicy
from mailsift.core.findings import Finding
from mailsift.core.lists import ListEntry, ListSnapshot
from mailsift.core.verdict import Action, Category, DecisionStep
from mailsift.policy import MessageFacts, PolicyInput, decide

NOW = 1_800_000_000.0
S = PolicySettings()
AUTHED = MessageFacts(from_addr="billing@vendor.example", from_domain="vendor.example",
                      client_ip="198.51.100.7", auth_aligned=True)
FORGED = MessageFacts(from_addr="billing@vendor.example", from_domain="vendor.example",
                      client_ip="203.0.113.9", auth_aligned=False,
                      hashes=("ab" * 32,))


def f(code: str, family: str | None, weight: float) -> Finding:
    return Finding(code=code, weight=weight, category=family, detector="test")


def inp(*findings: Finding, facts: MessageFacts = AUTHED,
        lists: tuple[ListEntry, ...] = ()) -> PolicyInput:
    return PolicyInput(findings=findings, facts=facts,
                       lists=ListSnapshot(entries=lists, version="v1"), now=NOW)


# -- #7 an admin block quarantines (or rejects) and says it decided ----------------------------
def test_issue17_7_blocked_sender_is_quarantined_never_junked_and_the_block_decided() -> None:
    block = (ListEntry("sender", "billing@vendor.example", "block", entry_id="4"),)
    v = decide(inp(facts=AUTHED, lists=block), S)
    assert v.action is Action.QUARANTINE
    assert v.decided_by is DecisionStep.ADMIN_BLOCK
    assert "block sender:billing@vendor.example" in v.explanation
    # already spam by detection: the block still decides, and still quarantines
    v = decide(inp(f("S", "spam", 20.0), lists=block), S)
    assert (v.action, v.decided_by) == (Action.QUARANTINE, DecisionStep.ADMIN_BLOCK)
    # a policy may reject blocked mail instead; it never softens it below quarantine
    rejecting = PolicySettings(block_action="reject")
    assert decide(inp(lists=block), rejecting).action is Action.REJECT
    lax = PolicySettings(actions={"spam_high": "deliver"})
    assert decide(inp(lists=block), lax).action is Action.QUARANTINE
    # an even stricter detection verdict keeps its own category
    v = decide(inp(f("M", "malware", 1.0), lists=block), S)
    assert (v.category, v.action) == (Category.MALWARE, Action.QUARANTINE)


def test_issue17_7_block_action_is_validated() -> None:
    with pytest.raises(ValidationError):
        PolicySettings.model_validate({"block_action": "junk"})


# -- #8 incident allows: authenticated, beaten by blocks, never deliver MALWARE ---------------
INCIDENT_DOMAIN = ListEntry("domain", "vendor.example", "allow", scope="incident:INC-1",
                            expires_at=NOW + 3600, note="INC-1")


def test_issue17_8_incident_allow_never_delivers_malware() -> None:
    v = decide(inp(f("ATT_EXE_IN_ZIP", "malware", 1.0), lists=(INCIDENT_DOMAIN,)), S)
    assert (v.category, v.action) == (Category.MALWARE, Action.QUARANTINE)
    assert any(o.kind == "incident_allow" and o.effect == "not applied" for o in v.overrides)
    by_hash = ListEntry("hash", "ab" * 32, "allow", scope="incident:INC-1",
                        expires_at=NOW + 3600)
    v = decide(inp(f("ATT_EXE_IN_ZIP", "malware", 1.0), facts=FORGED, lists=(by_hash,)), S)
    assert v.category is Category.MALWARE


def test_issue17_8_incident_allow_for_a_sender_or_domain_needs_authentication() -> None:
    phish = f("P", "phish", 12.0)
    v = decide(inp(phish, facts=FORGED, lists=(INCIDENT_DOMAIN,)), S)
    assert (v.category, v.action) == (Category.PHISH_HIGH, Action.QUARANTINE)
    assert any(o.kind == "incident_allow" and "not authenticated" in o.note
               for o in v.overrides)
    # authenticated (DMARC/compauth pass, which includes a trusted ARC sealer): it applies
    v = decide(inp(phish, facts=AUTHED, lists=(INCIDENT_DOMAIN,)), S)
    assert (v.category, v.decided_by) == (Category.CLEAN, DecisionStep.ADMIN_ALLOW)
    # a URL entry needs no sender authentication (it names the link, not the sender)
    url = ListEntry("url", "portal.vendor.example", "allow", scope="incident:INC-1",
                    expires_at=NOW + 3600)
    facts = MessageFacts(from_domain="vendor.example", url_hosts=("portal.vendor.example",))
    assert decide(inp(phish, facts=facts, lists=(url,)), S).category is Category.CLEAN


def test_issue17_8_block_beats_incident_allow() -> None:
    block = ListEntry("sender", "billing@vendor.example", "block")
    v = decide(inp(f("P", "phish", 12.0), lists=(INCIDENT_DOMAIN, block)), S)
    assert v.action is Action.QUARANTINE and v.decided_by is DecisionStep.ADMIN_BLOCK
    assert not any(o.kind == "incident_allow" and o.effect != "not applied"
                   for o in v.overrides)


# -- #9 impersonation is never demoted to junk by spam evidence ---------------------------------
def test_issue17_9_impersonation_wins_over_high_spam() -> None:
    v = decide(inp(f("IMP_DISPLAY_NAME_EXEC", "impersonation_user", 5.0),
                   f("SPAMMY", "spam", 15.0)), S)
    assert (v.category, v.action) == (Category.IMPERSONATION_USER, Action.QUARANTINE)
    v = decide(inp(f("IMP_LOOKALIKE", "impersonation_domain", 4.0),
                   f("SPAMMY", "spam", 30.0)), S)
    assert (v.category, v.action) == (Category.IMPERSONATION_DOMAIN, Action.QUARANTINE)
    # phishing still wins over impersonation (both quarantine; phish explains it better)
    v = decide(inp(f("IMP", "impersonation_user", 5.0), f("P", "phish", 6.0)), S)
    assert v.category is Category.PHISH


# -- #10 one source of category names -------------------------------------------------------------
def test_issue17_10_every_category_is_configurable() -> None:
    assert tuple(c.value for c in Category) == CATEGORY_NAMES
    s = PolicySettings.model_validate({"actions": {"phish_suspect": "quarantine"}})
    v = decide(inp(f("W", "phish", 2.0), f("L", "phish", 3.0)), s)
    assert (v.category, v.action) == (Category.PHISH_SUSPECT, Action.QUARANTINE)
    RecipientPolicy(name="x", actions={"phish_suspect": "junk"})
    with pytest.raises(ValidationError, match="unknown category"):
        PolicySettings.model_validate({"actions": {"phish_suspected": "junk"}})
