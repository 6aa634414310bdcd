"""Confirmed not-junk reports feed the gate: a candidate pack that would quarantine a message
users confirmed as legitimate is refused because of that report (``[rollout] reported_ham``).

The story: an invoice rule misfired and quarantined a supplier's invoice (since rolled back);
the recipient reported it as not junk and an analyst confirmed it. Someone stages the same
rule again: the gate replays the reported invoice as known-good mail and refuses it. An
unconfirmed report, or the setting switched off, does not count.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsift.config.schema import Settings
from mailsift.core.verdict import Action
from mailsift.rollout.robustness import ROBUSTNESS_SOURCE, robustness_cases
from mailsift.services.access import Principal
from mailsift.services.report_corpus import REPORTED_HAM_SOURCE
from mailsift.services.rollout import RolloutService
from mailsift.services.store_services import StoreServices
from mailsift.store.store import Store
from mailsift.testing.messages import make_message
from mailsift.testing.storekit import make_result
from mailsift.testing.traffic import INVOICE_PACK

ADMIN = Principal("ops", "admin")
ANALYST = Principal("sam", "analyst")
ANN = Principal("ann", "recipient", "ann@example.net")
PACK = INVOICE_PACK


def _settings(tmp: Path, reported_ham: bool = True, robustness_set: bool = False) -> Settings:
    # the shipped robustness set has invoices of its own: off where the story is the report
    return Settings.model_validate({
        "store": {"data_dir": str(tmp / "data")},
        "scan": {"offline": True},
        "rollout": {"known_good": [], "recent_messages": 0, "reported_ham": reported_ham,
                    "robustness_set": robustness_set,
                    "min_known_good": 0},  # the minimum: tests/rollout/test_gate_evidence.py
    })


def test_a_confirmed_not_junk_report_makes_the_gate_refuse(tmp_path: Path) -> None:
    pack = tmp_path / "finance-lures.toml"
    pack.write_text(PACK)
    settings = _settings(tmp_path)
    services = StoreServices.open(settings)
    try:
        store = services.store
        raw = make_message(subject="Invoice 1042 from Acme Hosting",
                           from_="Acme Billing <billing@acme-hosting.example>",
                           to="ann@example.net", message_id="<inv-1042@acme-hosting.example>",
                           text="Hello,\n\nyour invoice 1042 for November is attached. "
                                "Total EUR 49.00, due in 30 days.\n")
        store.trace.record(make_result("ms-invoice", raw, recipients={
            "ann@example.net": Action.QUARANTINE}, subject="Invoice 1042 from Acme Hosting",
            from_addr="billing@acme-hosting.example"), raw)
        report, _ = services.reports.create(ANN, "ms-invoice", "ham", comment="our hosting bill")

        rollout = RolloutService(store, settings)
        dep = rollout.stage(ADMIN, str(pack))
        # a user's click alone is a claim, not evidence: the gate ignores unconfirmed reports
        assert rollout.check(ADMIN, dep.name).passed

        asyncio.run(services.reports.triage(ANALYST, report.id, "confirmed"))
        refused = rollout.check(ADMIN, dep.name)
        assert not refused.passed
        assert refused.golden_hits == 1
        assert refused.golden_sources == {REPORTED_HAM_SOURCE: 1}
        assert refused.reasons == [
            f"quarantines 1 known-good message(s) (budget 0; {REPORTED_HAM_SOURCE} 1)"]
        (newly,) = refused.newly_quarantined
        assert (newly["source"], newly["id"], newly["rules"]) == (
            REPORTED_HAM_SOURCE, "ms-invoice", ["INVOICE_LURE"])
        assert refused.per_source == {REPORTED_HAM_SOURCE: 1}
        # the refusal is what promotion reads
        gate = store.rollout.row(dep.kind, dep.name, dep.version)
        assert gate is not None and '"passed": false' in gate["gate_json"]

        # switched off, the same candidate passes: it was the report that refused it
        off = RolloutService(store, _settings(tmp_path, reported_ham=False))
        assert off.check(ADMIN, dep.name).passed
    finally:
        services.close()


def test_reported_mail_the_active_set_already_quarantines_is_shown_not_held_against_it(
        tmp_path: Path, samples_dir: Path) -> None:
    pack = tmp_path / "finance-lures.toml"
    pack.write_text(PACK)
    settings = _settings(tmp_path)
    services = StoreServices.open(settings)
    try:
        store = services.store
        raw = (samples_dir / "phish-credential.eml").read_bytes()
        store.trace.record(make_result("ms-phish", raw, recipients={
            "ann@example.net": Action.QUARANTINE}, subject="Your account", from_addr=""), raw)
        report, _ = services.reports.create(ANN, "ms-phish", "ham", comment="it is real")
        asyncio.run(services.reports.triage(ANALYST, report.id, "confirmed"))

        rollout = RolloutService(store, settings)
        dep = rollout.stage(ADMIN, str(pack))
        result = rollout.check(ADMIN, dep.name)
        # the candidate changes nothing for it, so it refuses nothing...
        assert result.passed and not result.newly_quarantined
        # ...but an operator sees that mail users confirmed as legitimate is still quarantined
        (still,) = result.still_quarantined
        assert (still["source"], still["id"]) == (REPORTED_HAM_SOURCE, "ms-phish")
        assert still["verdict"].endswith("/quarantine") and still["reasons"]
        assert result.to_dict()["still_quarantined"] == [still]
    finally:
        services.close()


def test_the_robustness_set_is_known_good_mail_on_every_check(tmp_path: Path) -> None:
    """With no corpus configured and nothing reported, the shipped robustness set still holds
    the candidate: the invoice rule would quarantine its legitimate invoices and offers."""
    pack = tmp_path / "finance-lures.toml"
    pack.write_text(PACK)
    with Store.open(_settings(tmp_path).store) as store:
        rollout = RolloutService(store, _settings(tmp_path, robustness_set=True))
        dep = rollout.stage(ADMIN, str(pack))
        refused = rollout.check(ADMIN, dep.name)
        assert not refused.passed
        hits = [m for m in refused.newly_quarantined if m["label"] == "ham"]
        assert hits and {m["source"] for m in hits} == {ROBUSTNESS_SOURCE}
        assert all(m["id"].startswith("legit/") and m["rules"] == ["INVOICE_LURE"] for m in hits)
        assert refused.golden_sources == {ROBUSTNESS_SOURCE: len(hits)}
        assert refused.reasons[0] == (f"quarantines {len(hits)} known-good message(s) "
                                      f"(budget 0; {ROBUSTNESS_SOURCE} {len(hits)})")
        # every case is replayed, the lures too; adding a rule lets none of them through
        assert refused.per_source[ROBUSTNESS_SOURCE] == len(robustness_cases())
        assert refused.known_good_sources == {ROBUSTNESS_SOURCE: len(robustness_cases("ham"))}
        assert not refused.let_through

        assert RolloutService(store, _settings(tmp_path)).check(ADMIN, dep.name).passed
