"""The DNS-list health watch: one alert after N messages on which a list answered only
errors, a gauge while it fails, cleared by the first message on which it answered again."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client import CollectorRegistry

from mailsift.config.schema import Settings
from mailsift.core.findings import Finding
from mailsift.core.result import ScanResult
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.services.list_health import ListHealth
from mailsift.testing.messages import make_message

BASE = build_pipeline(Settings(detectors={"enabled": ["parse"]}),
                      ScanOptions(offline=True)).scan(make_message())


def _result(*findings: Finding) -> ScanResult:
    return replace(BASE, findings=tuple(findings))


def _error(name: str) -> Finding:
    return Finding("REPUTATION_DNS_ERROR", 0.0, (f"{name} ({name.lower()}.test): q: timeout",),
                   "reputation")


def test_alerts_once_then_clears() -> None:
    alerts: list[tuple[str, str]] = []
    registry = CollectorRegistry()
    health = ListHealth(["ZEN", "DBL"], lambda s, m: alerts.append((s, m)), registry=registry,
                        after=3)

    def failing(name: str) -> float | None:
        return registry.get_sample_value("mailsift_dnslist_failing", {"list": name})

    for _ in range(2):
        health.observe(_result(_error("ZEN")))
    assert alerts == [] and failing("ZEN") == 0
    health.observe(_result(_error("ZEN"), _error("DBL")))
    assert [s for s, _m in alerts] == ["DNS list ZEN is failing"]
    assert "last 3 messages" in alerts[0][1] and failing("ZEN") == 1 and failing("DBL") == 0
    for _ in range(5):
        health.observe(_result(_error("ZEN")))
    assert len(alerts) == 1  # one alert per episode
    # a refused answer counts as failing too; the DBL streak was broken above
    refused = Finding("REPUTATION_LIST_REFUSED", 0.0, ("DBL (dbl.test): x: 127.255.255.254",),
                      "reputation")
    health.observe(_result(refused))
    assert failing("ZEN") == 0  # ZEN answered on this message
    assert failing("DBL") == 0


def test_a_listing_or_silence_is_an_answer() -> None:
    alerts: list[tuple[str, str]] = []
    health = ListHealth(["ZEN"], lambda s, m: alerts.append((s, m)),
                        registry=CollectorRegistry(), after=2)
    health.observe(_result(_error("ZEN")))
    health.observe(_result(Finding("RBL_ZEN", 6.0, ("x",), "reputation", "spam")))
    health.observe(_result())  # nothing listed (or nothing asked): not a failure either
    health.observe(_result(_error("ZEN")))
    assert alerts == []
