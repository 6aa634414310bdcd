"""Issue 8's scenario, end to end against the running gateway.

A rule that quarantines every message mentioning "invoice" is staged; the gate refuses it
(legitimate invoices in the known-good set). Forced to active, a stream of mixed traffic with
legitimate invoices runs through the SMTP gateway: the circuit breaker trips, the rule is demoted,
an incident lists what it quarantined, and one incident release delivers those messages exactly
once. Nothing is lost: every message answered 250 ends up delivered or (for real phishing) in
quarantine. The figures are printed (run with -s) and asserted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from pathlib import Path

import pytest

from mailsift.config.schema import Settings
from mailsift.core.errors import InputError
from mailsift.services.access import Principal
from mailsift.services.rollout import RolloutService
from mailsift.store.store import Store
from mailsift.testing.gateway import RunningGateway, send_smtp
from mailsift.testing.sink import SmtpSink
from mailsift.testing.traffic import INVOICE_PACK, traffic
from mailsift.testing.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
ADMIN = Principal("ops@example.net", "admin")
PACK = INVOICE_PACK


def settings_for(tmp: Path, sink: SmtpSink) -> Settings:
    return Settings.model_validate({
        "store": {"data_dir": str(tmp / "data"), "release_port": sink.port},
        "gateway": {"next_hop_port": sink.port, "workers": 0, "relay_connections": 2},
        "smtp": {"port": 0},
        "http": {"enabled": False},
        "milter": {"enabled": False},
        "scan": {"offline": True},
        "rollout": {
            "known_good": [str(ROOT / "tests" / "corpus" / "known-good")],
            "robustness_set": False,  # the story counts its own known-good corpus
            "recent_messages": 0, "min_shadow_hours": 1.0,
            "bucket_seconds": 1, "window_buckets": 5, "baseline_buckets": 30,
            "check_seconds": 0.5, "min_hits": 5,
        },
    })


def test_bad_rule_is_refused_forced_tripped_and_released_exactly_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mailsift.rollout")
    pack = tmp_path / "finance-lures.toml"
    pack.write_text(PACK)
    with SmtpSink() as sink:
        settings = settings_for(tmp_path, sink)
        with Store.open(settings.store) as store:
            service = RolloutService(store, settings)
            dep = service.stage(ADMIN, str(pack), note="finance asked for it")
            report = service.check(ADMIN, dep.name)
            # the gate refuses: it would quarantine the legitimate invoices of the golden set
            assert not report.passed
            assert report.golden_hits == 6
            assert report.rules["INVOICE_LURE"].hits["ham"] == 6

        warm = traffic(120)
        mail = traffic(300)[120:]
        answered: list[tuple[str, str, int]] = []
        with RunningGateway(settings) as gw:
            # A day of normal traffic, compressed: the breaker learns its baselines while the
            # staged rule runs in shadow (recorded, never enforced).
            for i, (kind, raw) in enumerate(warm):
                code, _ = send_smtp(gw.ports["smtp"], raw, ["tom@example.net"])
                answered.append((kind, f"<scenario-{i}@example.org>", code))
            invoices = sum(1 for k, _ in warm if k == "invoice")
            with Store.open(settings.store) as store:
                service = RolloutService(store, settings)

                def shadow_changed() -> int:
                    return int(next(d for d in service.status()["deployments"]
                                    if d["artifact"] == "rules:finance-lures")["shadow"]["changed"])

                # the watcher flushes shadow verdicts to the store every couple of seconds
                wait_until(lambda: shadow_changed() >= invoices, timeout=30,
                           what=f"{invoices} shadow verdicts recorded (changed)")
                assert shadow_changed() == invoices
                with pytest.raises(InputError, match="promotion refused"):
                    service.promote(ADMIN, dep.name, to="active")
                service.promote(ADMIN, dep.name, to="active", force=True, reason="CFO insisted")
                assert any(e.action == "rollout.force" for e in store.audit.entries())
                version = service.state().version
            # the gateway's watcher polls the rollout state and reloads its scanners
            def reloaded() -> bool:
                return any(r.name == "mailsift.rollout" and str(version) in map(str, r.args or ())
                           for r in caplog.records)

            wait_until(reloaded, timeout=30, what=f"the gateway to reload rollout state {version}")
            start = time.time()
            for i, (kind, raw) in enumerate(mail, start=len(warm)):
                code, _ = send_smtp(gw.ports["smtp"], raw, ["tom@example.net"])
                answered.append((kind, f"<scenario-{i}@example.org>", code))
                time.sleep(0.01)
            with Store.open(settings.store) as store:
                incidents = wait_until(store.rollout.incidents, timeout=30,
                                       what="the breaker to open an incident")
        assert len(incidents) == 1, incidents
        incident = incidents[0]
        assert incident.subject == "rule:INVOICE_LURE"
        assert "demoted to shadow" in incident.action_taken

        with Store.open(settings.store) as store:
            service = RolloutService(store, settings)
            assert service.state().rule_states["INVOICE_LURE"].value == "shadow"
            first = asyncio.run(service.release_incident(ADMIN, incident.id, offline=True))
            released_at = time.time()
            again = asyncio.run(service.release_incident(ADMIN, incident.id, offline=True))
            members = store.rollout.incident_messages(incident.id)
            from mailsift.store.query import TraceQuery

            still = {r.message for r in store.trace.search(
                TraceQuery(status="quarantined"), limit=1000).items}
            misfire_times = []
            for message, outcome in members:
                record = store.trace.get(message)
                if outcome == "released" and record is not None:
                    misfire_times.append(record.received_at)

    assert all(code == 250 for _, _, code in answered)
    delivered = Counter(m.message_id for m in sink.messages)
    legit = [mid for kind, mid, _ in answered if kind != "phish"]
    phish = [mid for kind, mid, _ in answered if kind == "phish"]
    # exactly once for every legitimate message, whoever delivered it (gateway or incident)
    assert {mid: delivered[mid] for mid in legit} == dict.fromkeys(legit, 1)
    # real phishing stays quarantined and is not released by the incident
    assert all(delivered[mid] == 0 for mid in phish)
    assert len(still) == len(phish)
    assert first["released"] == len(misfire_times) > 0
    assert first["failed"] == 0 and again["released"] == 0
    wrong = len(misfire_times)
    trip_after = incident.opened_at - min(misfire_times)
    recovered_after = released_at - min(misfire_times)
    print(f"\nscenario: {len(warm) + len(mail)} messages ({len(legit)} legitimate, "
          f"{len(phish)} phish); after the forced promotion {len(mail)} messages in "
          f"{time.time() - start:.1f} s; legitimate invoices wrongly quarantined before the "
          f"trip: {wrong}; first misfire -> trip {trip_after:.1f} s; first misfire -> all "
          f"released {recovered_after:.1f} s; duplicates 0, lost 0")
    assert trip_after < 20
