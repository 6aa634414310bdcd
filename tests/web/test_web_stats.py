"""The dashboard's numbers and charts, without a browser: flow buckets, the breaker baseline and
limit, top findings (SQLite and PostgreSQL), and SVG that escapes what it is given."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsift.config.rollout import RolloutSettings
from mailsift.core.findings import Finding
from mailsift.core.verdict import Action, Category
from mailsift.interfaces.web import charts, stats
from mailsift.services.access import AccessDenied, Principal
from mailsift.store import Store
from mailsift.testing.storekit import FakeClock, make_result, pg_unavailable, temp_store_settings

ADMIN = Principal("a", "admin")
T0 = 1_800_000_000.0  # a multiple of 3600: bucket edges are whole hours


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgresql" and (why := pg_unavailable()):
        pytest.skip(why)
    with temp_store_settings(request.param, tmp_path) as settings:
        s = Store.open(settings, clock=FakeClock(T0))
        try:
            yield s
        finally:
            s.close()


def _record(store: Store, n: int, at: float, *, quarantined: bool, code: str = "") -> None:
    for i in range(n):
        finding = (Finding(code, 5.0, ("x",), "rules", "phish"),) if code else ()
        result = make_result(
            f"m-{at}-{i}-{quarantined}", b"Subject: x\r\n\r\nbody\r\n",
            recipients={"u@example.net": Action.QUARANTINE if quarantined else Action.DELIVER},
            category=Category.PHISH, findings=finding)
        store.trace.record(result, b"Subject: x\r\n\r\nbody\r\n", received_at=at)


def test_flow_baseline_and_top_findings(store: Store) -> None:
    now = T0
    _record(store, 4, now - 3 * 3600 + 10, quarantined=False)
    _record(store, 1, now - 3 * 3600 + 20, quarantined=True, code="RULE_A")
    _record(store, 2, now - 1800, quarantined=True, code="RULE_B")
    _record(store, 2, now - 1700, quarantined=False)
    _record(store, 1, now - 10 * 86400, quarantined=True, code="RULE_OLD")  # out of range
    flow = stats.mail_flow(ADMIN, store, since=now - 6 * 3600, until=now, bucket_seconds=3600)
    assert len(flow.starts) == 6 and flow.starts[0] == now - 6 * 3600
    assert flow.totals == [0, 0, 0, 5, 0, 4]
    assert flow.enforced == [0, 0, 0, 1, 0, 2]
    assert flow.by_action == {"deliver": [0, 0, 0, 4, 0, 2], "quarantine": [0, 0, 0, 1, 0, 2]}
    assert flow.rates[3] == pytest.approx(0.2) and flow.rates[0] is None
    settings = RolloutSettings(bucket_seconds=60, window_buckets=10, baseline_buckets=1440,
                               min_rate=0.001, min_ratio=3.0)
    base = stats.baseline(ADMIN, store, settings, now)
    # the last 10 minutes are the test window; the 24 h before them are the baseline
    assert (base.scanned, base.enforced) == (9, 3)
    assert base.rate == pytest.approx(3 / 9) and base.limit == pytest.approx(1.0)
    assert stats.top_findings(ADMIN, store, since=now - 86400) == [("RULE_B", 2), ("RULE_A", 1)]
    with pytest.raises(AccessDenied):
        stats.mail_flow(Principal("r", "recipient", "u@example.net"), store, since=0,
                        until=now, bucket_seconds=3600)


def test_charts_escape_labels_and_link_bars() -> None:
    svg = charts.hbars([("<script>x</script>", 3, "/trace?finding=A&b=<c>")], title="t<>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'href="/trace?finding=A&amp;b=&lt;c&gt;"' in svg
    bars = charts.stacked_bars(["00:00", "01:00"], {"phish": [1, 0], "clean": [2, 5]},
                               title="flow")
    assert bars.count("<rect") == 3 + 2  # three non-empty bars and two legend swatches
    line = charts.line_chart(["a", "b"], [None, 0.5], title="rate",
                             guides=[(0.1, "baseline", "#00f"), (3.0, "limit", "#f00")])
    assert "100%" in line  # a limit above 100% is drawn at the top, not off the scale
    assert "<polyline" not in line  # one known point: no line to draw


def _listed(store: Store, name: str, at: float, findings: tuple[Finding, ...]) -> None:
    result = make_result(name, b"Subject: x\r\n\r\nbody\r\n",
                         recipients={"u@example.net": Action.JUNK}, category=Category.SPAM,
                         findings=findings)
    store.trace.record(result, b"Subject: x\r\n\r\nbody\r\n", received_at=at)


def test_dns_list_hits_and_the_listed_pivot(store: Store) -> None:
    from mailsift.store.query import TraceQuery

    zen = Finding("RBL_ZEN", 6.0, ("192.0.2.2 (client) listed: 127.0.0.2",), "reputation",
                  "spam")
    dbl = Finding("URIBL_DBL", 6.0, ("evil.example (url) listed: 127.0.1.2",
                                     "phish.example (from) listed: 127.0.1.4"), "reputation",
                  "spam")
    err = Finding("REPUTATION_DNS_ERROR", 0.0, ("ZEN (zen.test): x: timeout",), "reputation")
    # evidence that merely mentions the IP in another code is not a listing
    other = Finding("RULE_X", 1.0, ("192.0.2.2 (client) listed: no",), "rules", "spam")
    _listed(store, "l1", T0 - 100, (zen, dbl))
    _listed(store, "l2", T0 - 90, (zen,))
    _listed(store, "l3", T0 - 80, (err, other))
    _listed(store, "l4", T0 - 70, (Finding("RBL_ZEN", 6.0, ("192.0.2.22 (client) listed: "
                                                           "127.0.0.2",), "reputation", "spam"),))
    assert stats.list_hits(ADMIN, store, since=T0 - 3600) == [
        ("RBL_ZEN", 3), ("REPUTATION_DNS_ERROR", 1), ("URIBL_DBL", 1)]

    def refs(**q: str) -> list[str]:
        return sorted(r.message for r in store.trace.search(TraceQuery(**q)).items)

    assert refs(listed="192.0.2.2") == ["l1", "l2"]  # not 192.0.2.22, not RULE_X's evidence
    assert refs(listed="Phish.Example") == ["l1"]
    assert refs(listed="nothing.example") == []


# -- issue 24.4: the breaker's view, per rule and category, in one-minute buckets ---------------
def _rule_hit(code: str) -> Finding:
    return Finding(code, 5.0, ("x",), "rules", "phish", artifact="rules:default", version="1")


def _spike_traffic(store: Store, now: float) -> list[tuple[float, bool, str]]:
    """A quiet day (1 quarantine by RULE_X per 100 messages), then 12 quarantines by RULE_X
    inside one minute, 5 minutes ago, among 20 ordinary messages in the test window."""
    mail: list[tuple[float, bool, str]] = []
    for i in range(300):  # the baseline window: the 24 h before the 10-minute test window
        mail.append((now - 900 - i * 280, i % 100 == 0, "RULE_X" if i % 100 == 0 else ""))
    for i in range(20):
        mail.append((now - 500 + i * 25, False, ""))
    spike_minute = (now // 60 - 5) * 60
    for i in range(12):
        mail.append((spike_minute + 2 + i * 4, True, "RULE_X"))
    for n, (at, quarantined, code) in enumerate(mail):
        result = make_result(
            f"s-{n}", b"Subject: x\r\n\r\nbody\r\n",
            recipients={"u@example.net": Action.QUARANTINE if quarantined else Action.DELIVER},
            category=Category.PHISH, findings=(_rule_hit(code),) if code else ())
        store.trace.record(result, b"Subject: x\r\n\r\nbody\r\n", received_at=at)
    return mail


def test_issue24_breaker_view_sees_a_one_minute_spike_as_the_breaker_does(store: Store) -> None:
    from mailsift.core.result import ScanResult
    from mailsift.rollout.breaker import Breaker
    from mailsift.rollout.counters import MemoryCounters

    now = T0 + 30
    settings = RolloutSettings(bucket_seconds=60, window_buckets=10, baseline_buckets=1440,
                               min_hits=10, min_ratio=3.0, min_rate=0.001, alpha=1e-6,
                               warmup_messages=100)
    mail = _spike_traffic(store, now)
    view = stats.breaker_view(ADMIN, store, settings, now=now, since=now - 6 * 3600,
                              bucket_seconds=60)
    assert len(view.starts) == 6 * 60 + 1 and view.warm and view.base_scanned == 300
    rule = next(s for s in view.subjects if s.subject == "rule:RULE_X")
    category = next(s for s in view.subjects if s.subject == "category:phish")
    assert (rule.hits, rule.scanned, rule.base_hits) == (12, 32, 3)
    assert rule.judgement.trip and category.judgement.trip
    assert rule.limit == pytest.approx(3 * 3 / 300)
    assert view.subjects[0].judgement.trip  # the tripping subjects come first
    # the spike minute is its own bucket, and it is far over the trip line
    spike = int(((now // 60 - 5) * 60 - view.starts[0]) // 60)
    assert rule.rates[spike] is not None and rule.rates[spike] > 10 * rule.limit
    assert rule.trips[spike] and not any(rule.trips[:spike])
    # (a quiet window with one message, a RULE_X hit, is a rate of 100% but no trip: min_hits)
    assert max(r for r in rule.rates[:spike] if r is not None) == 1.0
    # the same traffic through the real circuit breaker trips the very same subjects
    clock = [0.0]
    breaker = Breaker(MemoryCounters(), settings, lambda: clock[0])
    for at, quarantined, code in sorted(mail):
        clock[0] = at
        breaker.observe(_scan_result(ScanResult, quarantined, code))
    clock[0] = now
    tripped = {t.subject for t in breaker.evaluate()}
    assert tripped == {"rule:RULE_X", "category:phish", "artifact:rules:default@1"}
    assert tripped == {s.subject for s in view.subjects if s.judgement.trip}
    # a finding that fired but did not decide the verdict is no breaker subject: nor here
    bystander = Finding("RULE_BYSTANDER", 0.5, ("x",), "rules", "spam",
                        artifact="rules:default", version="1")
    result = make_result("s-by", b"Subject: x\r\n\r\nbody\r\n",
                         recipients={"u@example.net": Action.QUARANTINE},
                         category=Category.PHISH, findings=(_rule_hit("RULE_X"), bystander))
    result = dataclasses.replace(result, verdict=dataclasses.replace(
        result.verdict, reasons=(_rule_hit("RULE_X"),)))
    store.trace.record(result, b"Subject: x\r\n\r\nbody\r\n", received_at=now - 60)
    again = stats.breaker_view(ADMIN, store, settings, now=now, since=now - 3600,
                               bucket_seconds=60)
    assert "rule:RULE_BYSTANDER" not in {s.subject for s in again.subjects}
    assert next(s for s in again.subjects if s.subject == "rule:RULE_X").hits == 13
    # a day-long chart (5-minute buckets) keeps the spike: each point is the peak inside it
    day = stats.breaker_view(ADMIN, store, settings, now=now, since=now - 86400,
                             bucket_seconds=300)
    rule_day = next(s for s in day.subjects if s.subject == "rule:RULE_X")
    assert rule_day.peak == pytest.approx(rule.peak)


def _scan_result(kind: type, quarantined: bool, code: str) -> object:
    result = make_result(
        "x", b"Subject: x\r\n\r\nbody\r\n",
        recipients={"u@example.net": Action.QUARANTINE if quarantined else Action.DELIVER},
        category=Category.PHISH, findings=(_rule_hit(code),) if code else ())
    assert isinstance(result, kind)
    return result


def test_issue24_a_cold_breaker_and_a_quiet_subject_are_said_so(store: Store) -> None:
    from mailsift.interfaces.web.pages_dashboard import breaker_status

    now = T0 + 30
    settings = RolloutSettings(warmup_messages=1000)
    _spike_traffic(store, now)
    view = stats.breaker_view(ADMIN, store, settings, now=now, since=now - 3600,
                              bucket_seconds=60)
    assert not view.warm
    rule = next(s for s in view.subjects if s.subject == "rule:RULE_X")
    css, text = breaker_status(rule, view, young=False, incident=None, warmup=1000)
    assert css == "warn" and "warming up (300 of 1000" in text
    assert breaker_status(rule, view, young=True, incident=None, warmup=1000)[0] == "alarm"
    assert "incident INC-1" in breaker_status(rule, view, young=False, incident="INC-1",
                                              warmup=1000)[1]
    warm = stats.BreakerView(view.starts, view.subjects, 5000, True, view.window_seconds)
    assert "alert only" in breaker_status(rule, warm, young=False, incident=None,
                                          warmup=1000)[1]
