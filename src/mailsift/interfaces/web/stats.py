"""The dashboard's numbers, read from the trace: mail flow by time bucket, quarantine rate and
the circuit breaker's baseline and limit, top findings.

These are read-only aggregates over the ``messages`` and ``findings`` tables (one row per
message, the verdict's strictest action), computed in SQL with ``GROUP BY`` so a day of busy
traffic costs one indexed range scan per chart. They approximate what the circuit breaker sees:
the breaker counts every scanned message and the ones quarantined or rejected in time buckets
(``[rollout] bucket_seconds``); here the same two counts come from the trace, so the rate shown is
``(quarantine + reject) / all`` per bucket, the baseline is that rate over the breaker's baseline
window (``baseline_buckets`` before the test window), floored at ``min_rate`` as the breaker
floors it, and the limit is ``min_ratio`` times the baseline — the rate above which a subject
with enough hits trips. Only readers with ``trace.read`` may see them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from sqlalchemy import Integer, cast, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from mailsift.config.rollout import RolloutSettings
from mailsift.rollout.stats import BreakerPolicy, Judgement, judge
from mailsift.services.access import Principal, require
from mailsift.store import Store
from mailsift.store.models import FindingRow, MessageRow

__all__ = ["Baseline", "BreakerView", "Flow", "SubjectRate", "baseline", "breaker_view",
           "list_hits", "mail_flow", "top_findings"]

_ENFORCED = ("quarantine", "reject")


@dataclass(frozen=True, slots=True)
class Flow:
    starts: tuple[float, ...]
    by_category: dict[str, list[int]]
    by_action: dict[str, list[int]]
    totals: list[int]
    enforced: list[int]

    @property
    def rates(self) -> list[float | None]:
        return [e / t if t else None for e, t in zip(self.enforced, self.totals, strict=True)]


@dataclass(frozen=True, slots=True)
class Baseline:
    scanned: int
    enforced: int
    rate: float  # floored at min_rate, as the breaker does
    limit: float  # min_ratio x rate
    window_seconds: float


def _bucket(store: Store, column: object, size: float) -> object:
    # SQLite's CAST truncates, PostgreSQL's rounds: floor() there.
    expr = column / size  # type: ignore[operator]
    if store.backend == "postgresql":
        return cast(func.floor(expr), Integer)
    return cast(expr, Integer)


def mail_flow(actor: Principal, store: Store, *, since: float, until: float,
              bucket_seconds: float) -> Flow:
    require(actor, "trace.read")
    first = int(since // bucket_seconds)
    count = max(1, math.ceil(until / bucket_seconds) - first)  # the last bucket may be partial
    bucket = _bucket(store, MessageRow.received_at, bucket_seconds)
    stmt = (select(bucket.label("b"), MessageRow.category, MessageRow.action,  # type: ignore[attr-defined]
                   func.count())
            .where(MessageRow.received_at >= since, MessageRow.received_at < until)
            .group_by("b", MessageRow.category, MessageRow.action))
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    by_category: dict[str, list[int]] = {}
    by_action: dict[str, list[int]] = {}
    totals = [0] * count
    enforced = [0] * count
    for b, category, action, n in rows:
        i = int(b) - first
        if not 0 <= i < count:
            continue
        by_category.setdefault(category, [0] * count)[i] += n
        by_action.setdefault(action, [0] * count)[i] += n
        totals[i] += n
        if action in _ENFORCED:
            enforced[i] += n
    starts = tuple((first + i) * bucket_seconds for i in range(count))
    return Flow(starts, dict(sorted(by_category.items())), dict(sorted(by_action.items())),
                totals, enforced)


def baseline(actor: Principal, store: Store, settings: RolloutSettings, now: float) -> Baseline:
    """The overall quarantine rate over the breaker's baseline window, and its trip limit."""
    require(actor, "trace.read")
    window = settings.window_buckets * settings.bucket_seconds
    span = settings.baseline_buckets * settings.bucket_seconds
    end = now - window
    stmt = select(func.count(), func.count().filter(MessageRow.action.in_(_ENFORCED))).where(
        MessageRow.received_at >= end - span, MessageRow.received_at < end)
    with store.engine.connect() as conn:
        n, k = conn.execute(stmt).one()
    rate = max(settings.min_rate, k / n if n else 0.0)
    return Baseline(int(n), int(k), rate, settings.min_ratio * rate, float(span))


def top_findings(actor: Principal, store: Store, *, since: float,
                 limit: int = 10) -> list[tuple[str, int]]:
    """Finding codes by the number of messages carrying them since ``since``."""
    require(actor, "trace.read")
    n = func.count(func.distinct(FindingRow.message_pk))
    stmt = (select(FindingRow.code, n.label("n"))
            .join(MessageRow, MessageRow.id == FindingRow.message_pk)
            .where(MessageRow.received_at >= since)
            .group_by(FindingRow.code).order_by(n.desc(), FindingRow.code).limit(limit))
    with store.engine.connect() as conn:
        return [(code, int(c)) for code, c in conn.execute(stmt).all()]


def list_hits(actor: Principal, store: Store, *, since: float,
              limit: int = 10) -> list[tuple[str, int]]:
    """DNS-list findings (``RBL_*``, ``URIBL_*`` and the lists' operational codes) by the number
    of messages carrying them since ``since``."""
    require(actor, "trace.read")
    n = func.count(func.distinct(FindingRow.message_pk))
    code = FindingRow.code
    stmt = (select(code, n.label("n"))
            .join(MessageRow, MessageRow.id == FindingRow.message_pk)
            .where(MessageRow.received_at >= since,
                   or_(code.startswith("RBL_"), code.startswith("URIBL_"),
                       code.in_(("REPUTATION_DNS_ERROR", "REPUTATION_LIST_REFUSED"))))
            .group_by(code).order_by(n.desc(), code).limit(limit))
    with store.engine.connect() as conn:
        return [(c, int(k)) for c, k in conn.execute(stmt).all()]


# -- the circuit breaker's view, per subject ----------------------------------------------------
@dataclass(frozen=True, slots=True)
class SubjectRate:
    """One breaker subject (``category:phish``, ``rule:INVOICE_LURE``) as the breaker judges it
    now, and its rate over time against its own trip line."""

    subject: str
    rates: list[float | None]  # per display bucket: the highest breaker-window rate inside it
    trips: list[bool]  # per display bucket: would the breaker's test trip in a window inside it
    hits: int  # quarantined or rejected in the current test window
    scanned: int  # every message in the current test window
    base_hits: int
    base_scanned: int
    judgement: Judgement  # ``rollout.stats.judge``, the breaker's own test, same settings
    limit: float  # the trip line: min_ratio x the subject's baseline (floored at min_rate)

    @property
    def rate(self) -> float:
        return self.hits / self.scanned if self.scanned else 0.0

    @property
    def peak(self) -> float:
        return max((r for r in self.rates if r is not None), default=0.0)


@dataclass(frozen=True, slots=True)
class BreakerView:
    starts: tuple[float, ...]
    subjects: list[SubjectRate]
    base_scanned: int  # messages in the baseline window (warm once >= warmup_messages)
    warm: bool
    window_seconds: float


def _minute(store: Store, size: float) -> ColumnElement[int]:
    return _bucket(store, MessageRow.received_at, size)  # type: ignore[return-value]


def _subject_counts(store: Store, lo: float, hi: float, size: float | None
                    ) -> tuple[dict[int, int], dict[str, dict[int, int]]]:
    """Messages per breaker bucket (all), and per subject the quarantined or rejected ones it
    counts against, from the trace, exactly as ``rollout.breaker.subjects_of`` counts a scan:
    ``category:<c>`` of the verdict, and for each finding among the verdict's reasons
    ``rule:<code>`` (a rule-pack finding) and ``artifact:<artifact>@<version>``. ``size`` None:
    one bucket (0) for the whole range."""
    b = _minute(store, size).label("b") if size else cast(0, Integer).label("b")
    in_range = (MessageRow.received_at >= lo, MessageRow.received_at < hi)
    enforced = MessageRow.action.in_(_ENFORCED)
    everything = select(b, func.count()).where(*in_range).group_by("b")
    held = select(MessageRow.id, b, MessageRow.category, MessageRow.verdict_json).where(
        *in_range, enforced)
    found = (select(FindingRow.message_pk, FindingRow.code, FindingRow.artifact,
                    FindingRow.version)
             .join(MessageRow, MessageRow.id == FindingRow.message_pk)
             .where(*in_range, enforced, FindingRow.artifact != ""))
    total: dict[int, int] = {}
    hits: dict[str, dict[int, int]] = {}
    with store.engine.connect() as conn:
        for bucket, n in conn.execute(everything).all():
            total[int(bucket)] = int(n)
        artifacts: dict[str, list[tuple[str, str, str]]] = {}
        for pk, code, artifact, version in conn.execute(found).all():
            artifacts.setdefault(pk, []).append((code, artifact, version))
        for pk, bucket, category, verdict in conn.execute(held).all():
            try:
                reasons = set(json.loads(verdict or "{}").get("reasons") or ())
            except ValueError:
                reasons = set()
            subjects = {f"category:{category}"}
            for code, artifact, version in artifacts.get(pk, ()):
                if code in reasons:
                    if artifact.startswith("rules:"):
                        subjects.add(f"rule:{code}")
                    subjects.add(f"artifact:{artifact}@{version}")
            for subject in subjects:
                per = hits.setdefault(subject, {})
                per[int(bucket)] = per.get(int(bucket), 0) + 1
    return total, hits


def breaker_view(actor: Principal, store: Store, settings: RolloutSettings, *, now: float,
                 since: float, bucket_seconds: float, limit: int = 6) -> BreakerView:
    """Rates per rule, artifact version and category as the circuit breaker computes them,
    from the trace.

    The breaker judges each subject over its test window (``window_buckets`` buckets of
    ``bucket_seconds``) against the subject's own baseline (the ``baseline_buckets`` before),
    with ``rollout.stats.judge``; here the same windows, the same settings and the same
    function give each subject's judgement now, and, for every breaker bucket since ``since``,
    the rate the breaker would have seen at that moment (hits over the window ending there /
    messages in it). A display bucket shows the highest of those inside it, so a one-minute
    spike stays visible in a day-long chart. The breaker's own counters live in memory or
    Redis; the trace is the same traffic (a node's counters restart with it, the trace does
    not), so these numbers can differ from the breaker's after a restart."""
    require(actor, "trace.read")
    size = float(settings.bucket_seconds)
    window = settings.window_buckets
    now_b = int(now // size)
    first = now_b - window + 1  # the breaker's test window: buckets first..now_b
    base_total, base_hits = _subject_counts(
        store, (first - settings.baseline_buckets) * size, first * size, None)
    base_n = base_total.get(0, 0)
    lo_b = int(since // size) - window + 1
    total, hits = _subject_counts(store, lo_b * size, (now_b + 1) * size, size)
    count = now_b - lo_b + 1
    prefix_all = [0] * (count + 1)
    for i in range(count):
        prefix_all[i + 1] = prefix_all[i] + total.get(lo_b + i, 0)
    first_display = int(since // bucket_seconds)
    n_display = max(1, math.ceil(now / bucket_seconds) - first_display)
    policy = BreakerPolicy(alpha=settings.alpha, min_hits=settings.min_hits,
                           min_ratio=settings.min_ratio, min_rate=settings.min_rate)
    out: list[SubjectRate] = []
    for subject in sorted(set(hits) | {s for s, v in base_hits.items() if v.get(0)}):
        per = hits.get(subject, {})
        prefix = [0] * (count + 1)
        for i in range(count):
            prefix[i + 1] = prefix[i] + per.get(lo_b + i, 0)
        bk = base_hits.get(subject, {}).get(0, 0)
        rates: list[float | None] = [None] * n_display
        trips = [False] * n_display
        for i in range(window - 1, count):  # every bucket with a whole window behind it
            n = prefix_all[i + 1] - prefix_all[i + 1 - window]
            d = int((lo_b + i) * size // bucket_seconds) - first_display
            if not n or not 0 <= d < n_display:
                continue
            k = prefix[i + 1] - prefix[i + 1 - window]
            r = k / n
            if rates[d] is None or r > rates[d]:  # type: ignore[operator]
                rates[d] = r
            # the current baseline stands in for the one the breaker had then
            if k >= policy.min_hits and not trips[d]:
                trips[d] = judge(k, n, bk, base_n, policy).trip
        k = prefix[count] - prefix[count - window]
        n_now = prefix_all[count] - prefix_all[count - window]
        j = judge(k, n_now, bk, base_n, policy)
        out.append(SubjectRate(subject, rates, trips, k, n_now, bk, base_n, j,
                               settings.min_ratio * j.baseline))
    # the subjects that matter first: tripping now, then closest to their trip line
    out.sort(key=lambda x: (not x.judgement.trip, not any(x.trips),
                            -(x.peak / x.limit if x.limit else 0), -x.hits, x.subject))
    starts = tuple((first_display + i) * bucket_seconds for i in range(n_display))
    return BreakerView(starts, out[:limit], base_n, base_n >= settings.warmup_messages,
                       window * size)
