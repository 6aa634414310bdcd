"""Issue 23: flow-rule sets are versioned artifacts of the rollout registry -- staged in shadow,
gated against known-good mail (a rule that would quarantine it is refused, with the evidence),
canaried, promoted, rolled back, every step audited -- and the gateway enforces the promoted
version. Real pipeline, real SQLite store, real SMTP in and out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mailsift.config.mailflow import MailflowSettings
from mailsift.config.schema import Settings
from mailsift.core.envelope import Connection, Envelope
from mailsift.core.errors import InputError
from mailsift.core.rollout import CanaryScope
from mailsift.mailflow.loader import rules_text
from mailsift.mailflow.step import FlowStep
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.services.access import Principal
from mailsift.services.rollout import RolloutService
from mailsift.store.store import Store
from mailsift.testing.gateway import RunningGateway, send_smtp
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink
from mailsift.testing.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ADMIN = Principal("ops@customer.test", "admin")
TAG = {"name": "tag-external", "priority": 10, "if": {"direction": "inbound"},
       "then": {"prepend_subject": "[EXTERNAL] "}}

MARK = {"name": "mark-outside", "priority": 20, "if": {"direction": "inbound"},
        "then": {"add_header": {"X-Outside": "yes"}}}
HOLD = {"name": "hold-invoices", "if": {"body_words": ["invoice"]},
        "then": {"quarantine": True}}


def rule_file(*rules: dict[str, Any]) -> str:
    return rules_text(MailflowSettings.model_validate({"rules": list(rules)}))


BAD = rule_file(HOLD)
GOOD = rule_file(TAG, MARK)


def invoices(tmp: Path, n: int = 6) -> str:
    folder = tmp / "known-good"
    folder.mkdir()
    for i in range(n):
        (folder / f"inv-{i}.eml").write_bytes(make_message(
            subject=f"Your invoice {i}", message_id=f"<inv-{i}@example.org>",
            text=f"Hello,\n\nplease find invoice {i} for last month's order attached.\n"))
    return str(folder)


def settings_for(tmp: Path, port: int = 25, **extra: Any) -> Settings:
    return Settings.model_validate({
        "store": {"data_dir": str(tmp / "data")},
        "scan": {"offline": True},
        "gateway": {"next_hop_port": port, "workers": 0, "relay_connections": 2,
                    "next_hop_timeout": 5},
        "smtp": {"port": 0, "hostname": "mx.test"},
        "http": {"enabled": False}, "milter": {"enabled": False},
        "direction": {"accepted_domains": ["customer.test"]},
        "mailflow": {"rules": [TAG]},
        "rollout": {"recent_messages": 0, "min_shadow_hours": 0, "robustness_set": False,
                    "min_known_good": 5, "known_good": [invoices(tmp)]},
        **extra,
    })


def write(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


def test_a_rule_that_quarantines_known_good_mail_is_refused_with_evidence(
        tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with Store.open(settings.store) as store:
        svc = RolloutService(store, settings)
        dep = svc.stage(ADMIN, write(tmp_path, "bad.toml", BAD), note="finance asked")
        assert (dep.artifact, dep.state.value) == ("mailflow:rules", "shadow")
        deps = {d.version: d.state.value for d in store.rollout.deployments("mailflow")}
        assert deps[dep.version] == "shadow"
        assert "active" in deps.values()  # the configured rules: the baseline
        report = svc.check(ADMIN, "mailflow:rules", dep.version)
        assert not report.passed
        assert any("quarantines 6 known-good message(s)" in r for r in report.reasons)
        evidence = report.newly_quarantined
        assert len(evidence) == 6
        assert evidence[0]["rules"] == ["MAILFLOW:hold-invoices"]
        assert evidence[0]["after"].endswith("/quarantine")
        assert report.rules["MAILFLOW:hold-invoices"].hits["ham"] == 6
        with pytest.raises(InputError, match="the gate refused it"):
            svc.promote(ADMIN, "mailflow:rules", dep.version)
        actions = [e.action for e in store.audit.entries(limit=20)]
        assert "rollout.stage" in actions and "rollout.check" in actions
        with pytest.raises(InputError, match="already staged"):
            svc.stage(ADMIN, write(tmp_path, "again.toml", BAD))


def test_stage_gate_canary_promote_enforce_and_roll_back(tmp_path: Path) -> None:
    with SmtpSink() as sink:
        settings = settings_for(tmp_path, sink.port)
        with Store.open(settings.store) as store:
            svc = RolloutService(store, settings)
            dep = svc.stage(ADMIN, write(tmp_path, "good.toml", GOOD))
            report = svc.check(ADMIN, "mailflow:rules")
            assert report.passed, report.reasons
            assert report.rules["MAILFLOW:mark-outside"].hits["ham"] == 6
            svc.promote(ADMIN, "mailflow:rules", dep.version, to="canary",
                        scope=CanaryScope(recipients=("canary@customer.test",)))
            state = svc.state()

        # the canary acts for its recipients only; elsewhere its verdict is a shadow one
        step = FlowStep.for_state(settings.direction, settings.mailflow, state)
        pipeline = build_pipeline(settings, ScanOptions(offline=True))
        raw = make_message(message_id="<c@example.org>")
        for rcpt, header in (("canary@customer.test", True), ("bob@customer.test", False)):
            env = Envelope(mail_from="a@example.org", rcpt_to=(rcpt,),
                           connection=Connection(client_ip="198.51.100.7"))
            ctx = step.before(raw, env)
            result, out = step.after(ctx, pipeline.scan(ctx.raw, env), ctx.raw)
            assert (b"X-Outside: yes" in out) is header
            assert (f"mailflow:rules@{dep.version}" in result.shadow) is not header

        with Store.open(settings.store) as store:
            svc = RolloutService(store, settings)
            svc.promote(ADMIN, "mailflow:rules", dep.version, to="active")
        with RunningGateway(settings) as gw:  # enforcement uses the promoted version
            port = gw.ports["smtp"]
            assert send_smtp(port, raw, ["bob@customer.test"],
                             xforward="ADDR=198.51.100.7")[0] == 250
            assert sink.wait_for(1)
            assert sink.messages[0].header("X-Outside") == ["yes"]

            with Store.open(settings.store) as store:  # rolled back while the gateway runs
                svc = RolloutService(store, settings)
                back = svc.rollback(ADMIN, "mailflow:rules", reason="users complain")
                assert back.version != dep.version
                actions = [e.action for e in store.audit.entries(limit=20)]
                for action in ("rollout.stage", "rollout.check", "rollout.promote",
                               "rollout.rollback"):
                    assert action in actions
            probes = iter(range(100))

            def configured_rules_again() -> bool:  # the watcher reloads within its poll
                n = next(probes)
                mid = f"<probe-{n}@example.org>"
                assert send_smtp(port, make_message(message_id=mid), ["bob@customer.test"],
                                 xforward="ADDR=198.51.100.7")[0] == 250
                assert sink.wait_for(n + 2)
                got = next(m for m in sink.messages if m.message_id == mid)
                return got.header("X-Outside") == [] and \
                    got.header("Subject") == ["[EXTERNAL] Hello"]

            wait_until(configured_rules_again, what="the rolled-back rules", timeout=30,
                       interval=0.5)
