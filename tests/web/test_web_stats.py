"""The dashboard's numbers and charts, without a browser: flow buckets, the breaker baseline and
limit, top findings (SQLite and PostgreSQL), and SVG that escapes what it is given."""

from __future__ import annotations

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
