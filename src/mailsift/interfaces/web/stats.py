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

import math
from dataclasses import dataclass

from sqlalchemy import Integer, cast, func, or_, select

from mailsift.config.rollout import RolloutSettings
from mailsift.services.access import Principal, require
from mailsift.store import Store
from mailsift.store.models import FindingRow, MessageRow

__all__ = ["Baseline", "Flow", "baseline", "list_hits", "mail_flow", "top_findings"]

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
