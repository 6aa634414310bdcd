"""Issue 17 #5: on a fresh install the breaker learns its baseline before it alerts on
established rules and categories; young ones are judged from the first message."""

from __future__ import annotations

from mailsift.config.rollout import RolloutSettings
from mailsift.core.envelope import Envelope
from mailsift.core.findings import Finding
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Action, Category, DecisionStep, Verdict
from mailsift.parsing import parse_message
from mailsift.rollout.breaker import Breaker
from mailsift.rollout.counters import MemoryCounters
from mailsift.testing.messages import make_message

MSG = parse_message(make_message())
PHISH_RULE = Finding(code="PHISH_OLD", weight=7.0, category="phish", detector="rules",
                     artifact="rules:default", version="v1")


def result(i: int, quarantined: bool) -> ScanResult:
    verdict = Verdict(Category.PHISH if quarantined else Category.CLEAN,
                      Action.QUARANTINE if quarantined else Action.DELIVER, 7.0,
                      DecisionStep.DETECTION, "", reasons=(PHISH_RULE,) if quarantined else ())
    return ScanResult(id=f"m{i}", verdict=verdict, message=MSG, envelope=Envelope())


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def feed(breaker: Breaker, clock: Clock, n: int, every: int, step: float) -> None:
    for i in range(n):
        clock.now += step
        breaker.observe(result(i, every > 0 and i % every == 0))


SETTINGS = RolloutSettings(bucket_seconds=60, window_buckets=10, baseline_buckets=60)


def test_issue17_5_fresh_install_does_not_alert_on_established_subjects() -> None:
    clock = Clock()
    breaker = Breaker(MemoryCounters(), SETTINGS, clock)
    # the first minutes of a fresh install: a campaign that an old rule quarantines
    feed(breaker, clock, 200, every=4, step=2.0)
    assert breaker.evaluate(young=lambda subject: False) == []
    assert not breaker.warm()
    # a young rule (just promoted) is still judged at once: no baseline needed to trip it
    trips = breaker.evaluate(young=lambda subject: subject == "rule:PHISH_OLD")
    assert [t.subject for t in trips] == ["rule:PHISH_OLD"]


def test_issue17_5_after_the_warm_up_a_spike_on_an_established_rule_alerts() -> None:
    clock = Clock()
    breaker = Breaker(MemoryCounters(), SETTINGS, clock)
    feed(breaker, clock, 1500, every=200, step=3.0)  # 75 minutes of normal traffic
    assert breaker.warm()
    assert breaker.evaluate() == []
    feed(breaker, clock, 200, every=4, step=2.0)  # the spike
    subjects = {t.subject for t in breaker.evaluate()}
    assert "rule:PHISH_OLD" in subjects
