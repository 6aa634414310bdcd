"""Issue 17 #3, #4 and #6: the gate refuses without evidence, reads the shadow diff, judges what
a promotion makes act (single rules included), and staged versions can be withdrawn or retired.

Real pipeline, real SQLite store; the shadow verdicts come from messages sent through the
gateway's own path (``mailsift.testing.parity``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mailsift.app import GatewayParts
from mailsift.config.schema import Settings
from mailsift.core.errors import InputError
from mailsift.core.rollout import CanaryScope
from mailsift.rollout.robustness import ROBUSTNESS_SOURCE, robustness_cases
from mailsift.services.access import Principal
from mailsift.services.rollout import RolloutService
from mailsift.store.store import Store
from mailsift.testing.messages import make_message
from mailsift.testing.parity import Clock, envelope, gateway_settings, with_gateway
from mailsift.testing.traffic import INVOICE_PACK, traffic

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
KNOWN_GOOD = str(ROOT / "tests" / "corpus" / "known-good")
ADMIN = Principal("ops@example.net", "admin")

SHADOW_PACK = '''
[pack]
name = "site-lures"
description = "New lures, born in shadow"
default_state = "shadow"

[[rule]]
id = "SITE_INVOICE_LURE"
description = "Mentions an invoice (misfires on every legitimate invoice)"
category = "phish"
weight = 7.0
body = '/\\binvoice\\b/i'

[[rule]]
id = "SITE_ZULU"
description = "Mentions zulu"
category = "spam"
weight = 1.0
body = '/zulu-never-seen/'
'''


def notes_corpus(tmp: Path, n: int, name: str = "notes") -> str:
    folder = tmp / name
    folder.mkdir()
    for i in range(n):
        (folder / f"note-{i}.eml").write_bytes(make_message(
            subject=f"Team notes {i}", message_id=f"<note-{i}@example.org>",
            text="Hi,\n\nthe notes from today's meeting are on the wiki.\n"))
    return str(folder)


def settings_for(tmp: Path, **rollout: Any) -> Settings:
    # these stories count their own corpora, so the shipped robustness set (73 known-good
    # messages, invoices among them) is left out unless a test asks for it
    return Settings.model_validate({
        "store": {"data_dir": str(tmp / "data")},
        "scan": {"offline": True},
        "rollout": {"recent_messages": 0, "min_shadow_hours": 0, "robustness_set": False,
                    **rollout},
    })


def stage(service: RolloutService, tmp: Path, text: str, name: str) -> str:
    path = tmp / f"{name}.toml"
    path.write_text(text)
    return service.stage(ADMIN, str(path)).name


# -- #3 no evidence, no pass ----------------------------------------------------------------------
def test_issue17_3_the_gate_refuses_an_empty_known_good_replay(tmp_path: Path) -> None:
    # the default store keeps only quarantined originals: recent traffic replays nothing, and
    # no known_good corpus is configured
    settings = settings_for(tmp_path, known_good=[], recent_messages=5000)
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        name = stage(service, tmp_path, INVOICE_PACK, "finance")
        report = service.check(ADMIN, name)
        assert not report.passed
        assert report.known_good == 0
        assert any("known-good" in r and "minimum" in r for r in report.reasons)
        with pytest.raises(InputError, match="promotion refused"):
            service.promote(ADMIN, name, to="active")
        service.promote(ADMIN, name, to="active", force=True, reason="no corpus yet")
        assert [e.action for e in store.audit.entries()].count("rollout.force") == 1


def test_issue17_3_known_good_from_any_source_counts_toward_the_minimum(tmp_path: Path) -> None:
    harmless = INVOICE_PACK.replace("invoice", "zulu-never-seen")
    settings = settings_for(tmp_path, known_good=[notes_corpus(tmp_path, 4)], min_known_good=6)
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        name = stage(service, tmp_path, harmless, "finance")
        report = service.check(ADMIN, name)
        assert report.known_good == 4 and not report.passed
        # an extra labelled corpus (or the robustness set, or confirmed reports) adds to it
        more = notes_corpus(tmp_path, 2, "more-notes")
        report = service.check(ADMIN, name, corpora=[("ham", more)])
        assert report.known_good == 6 and report.passed, report.reasons


def test_issue17_3_the_robustness_set_alone_reaches_the_minimum(tmp_path: Path) -> None:
    # no known_good corpus, nothing reported, no traffic: the shipped robustness set's
    # legitimate mail is known-good input and, on its own, meets the default minimum (20)
    harmless = INVOICE_PACK.replace("invoice", "zulu-never-seen")
    legit = len(robustness_cases("ham"))
    assert legit >= 20
    settings = settings_for(tmp_path, known_good=[], robustness_set=True)
    assert settings.rollout.min_known_good == 20
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        name = stage(service, tmp_path, harmless, "finance")
        report = service.check(ADMIN, name)
        assert report.known_good == legit
        assert report.known_good_sources == {ROBUSTNESS_SOURCE: legit}
        assert report.to_dict()["known_good_sources"] == {ROBUSTNESS_SOURCE: legit}
        assert report.passed, report.reasons
        assert not report.let_through
        # the same check without the set has no evidence and is refused
        bare = RolloutService(store, settings_for(tmp_path, known_good=[]))
        refused = bare.check(ADMIN, name)
        assert refused.known_good == 0 and not refused.passed
        assert any("known-good" in r and "minimum 20" in r for r in refused.reasons)


def test_issue17_3_the_gate_refuses_when_the_shadow_diff_moves_delivered_mail_to_quarantine(
        tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path / "data", rollout={
        "known_good": [notes_corpus(tmp_path, 5)], "min_known_good": 5,
        "recent_messages": 0, "robustness_set": False})
    pack = tmp_path / "finance.toml"
    pack.write_text(INVOICE_PACK)
    clock = Clock()

    async def body(parts: GatewayParts) -> Any:
        dep = parts.rollout.stage(ADMIN, str(pack))
        await parts.watcher.reload_if_changed()
        for i, (_, raw) in enumerate(traffic(60)):
            await parts.gateway.handle(raw, envelope(i), _Discard())
        await parts.watcher._flush_shadow()
        return dep

    dep = with_gateway(settings, clock, body)
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        report = service.check(ADMIN, dep.name)
        # the replayed notes do not mention invoices: only the shadow diff can tell
        assert report.golden_hits == 0 and report.known_good == 5
        assert not report.passed
        (reason,) = [r for r in report.reasons if "shadow" in r]
        assert "20 of 20 delivered" in reason and "quarantine" in reason
        with pytest.raises(InputError, match="shadow"):
            service.promote(ADMIN, dep.name, to="canary", scope=CanaryScope(
                domains=("example.net",)))


class _Discard:
    """An enactor for tests that need verdicts and observers but no delivery: the milter's
    'hand back to the MTA' without an MTA."""

    async def act(self, decided: Any) -> str:
        return "kept"

    def took_effect(self, outcome: str, result: Any) -> bool:
        return True

    async def already(self, ref: str, result: Any) -> str:
        return "already"

    def failed(self, ref: str, stage: str) -> str:
        return "failed"


# -- #6 the gate judges what acts; a single rule is gated on its own effect ---------------------
def test_issue17_6_a_rule_cannot_reach_enforcement_without_the_gate(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, known_good=[KNOWN_GOOD], min_known_good=1)
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        name = stage(service, tmp_path, SHADOW_PACK, "site")
        report = service.check(ADMIN, name)
        # promoting the pack changes no verdict: its rules stay in shadow
        assert report.passed, report.reasons
        assert report.rules["SITE_INVOICE_LURE"].hits["ham"] >= 6
        dep = service.promote(ADMIN, name, to="active")
        # making the misfiring rule act is a promotion of its own, gated on its effect
        with pytest.raises(InputError, match=r"rule SITE_INVOICE_LURE refused.*known-good"):
            service.set_rule(ADMIN, "SITE_INVOICE_LURE", "active")
        # and the pack's report and promotion say which rules the promotion left in shadow
        assert report.shadow_rules == ["SITE_INVOICE_LURE", "SITE_ZULU"]
        assert "stay in shadow" in " ".join(report.notes)
        assert service.shadow_rules(dep) == ["SITE_INVOICE_LURE", "SITE_ZULU"]
        with pytest.raises(InputError, match="refused"):
            service.set_rule(ADMIN, "SITE_INVOICE_LURE", "canary")
        assert "SITE_INVOICE_LURE" not in service.state().rule_states
        # a harmless rule passes its gate; demotion never needs one
        service.set_rule(ADMIN, "SITE_ZULU", "active")
        service.set_rule(ADMIN, "SITE_ZULU", "shadow")
        # forced: allowed, audited and alerted
        service.set_rule(ADMIN, "SITE_INVOICE_LURE", "active", force=True, reason="test")
        assert service.state().rule_states["SITE_INVOICE_LURE"].value == "active"
        forced = [e for e in store.audit.entries() if e.action == "rollout.force"]
        assert forced and forced[-1].target == "rule:SITE_INVOICE_LURE"
        assert store.rollout.alerts(5)[0].kind == "forced_promotion"


# -- #4 withdraw and retire ------------------------------------------------------------------------
def test_issue17_4_a_canary_can_be_withdrawn_and_a_staged_version_retired(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, known_good=[], min_known_good=0)
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        name = stage(service, tmp_path, INVOICE_PACK, "finance")
        service.promote(ADMIN, name, to="canary", scope=CanaryScope(domains=("pilot.example",)),
                        force=True, reason="pilot")
        back = service.withdraw(ADMIN, name, reason="pilot complained")
        assert back.state.value == "shadow"
        assert service.state().canary_scopes() == {}
        gone = service.retire(ADMIN, name, reason="not needed")
        assert gone.state.value == "retired"
        assert not [d for d in service.state().deployments
                    if d.name == "finance-lures" and d.state.value != "retired"]
        with pytest.raises(InputError):
            service.withdraw(ADMIN, name)  # nothing in canary any more
        actions = [e.action for e in store.audit.entries()]
        assert "rollout.withdraw" in actions and "rollout.retire" in actions
