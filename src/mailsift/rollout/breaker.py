"""The circuit breaker: watches quarantine rates per rule, artifact version and category.

Every scanned message adds to shared per-bucket counters (see ``counters``): ``all/seen`` for
every message, and ``hits`` for each subject that made a message be quarantined or rejected —
the rules among the verdict's reasons (``rule:<ID>``), their artifact versions
(``artifact:<artifact>@<version>``) and the category (``category:<name>``). ``evaluate`` compares
each subject's rate in the test window with its baseline (``stats.judge``) and applies the
blast-radius cap to young artifacts. Acting on a trip (demote, alert, incident) belongs to the
rollout service.

Warm-up: until the baseline window holds ``warmup_messages`` messages (a fresh install, or a
node whose in-memory counters just started), an established subject's rate is compared with the
``min_rate`` floor rather than with what it normally does, so an old phishing rule in a campaign
would alert on day one. Established subjects are therefore not judged until the breaker is warm;
young ones (just promoted) are judged from the first message, floor and blast-radius cap alike.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from mailsift.config.rollout import RolloutSettings
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Action
from mailsift.rollout.counters import Counters
from mailsift.rollout.stats import BreakerPolicy, Judgement, judge

__all__ = ["Breaker", "Trip", "subjects_of"]

_ENFORCED = (Action.QUARANTINE, Action.REJECT)


@dataclass(frozen=True, slots=True)
class Trip:
    subject: str
    kind: str  # "rate" | "blast_radius"
    judgement: Judgement | None
    reason: str


def subjects_of(result: ScanResult) -> set[str]:
    """The subjects a quarantine/reject of this message counts against."""
    if result.verdict.action not in _ENFORCED:
        return set()
    out = {f"category:{result.verdict.category.value}"}
    for f in result.verdict.reasons:
        if f.artifact.startswith("rules:"):
            out.add(f"rule:{f.code}")
        if f.artifact:
            out.add(f"artifact:{f.artifact}@{f.version}")
    return out


class Breaker:
    def __init__(self, counters: Counters, settings: RolloutSettings,
                 clock: Callable[[], float]) -> None:
        self.counters = counters
        self.settings = settings
        self.clock = clock
        self.policy = BreakerPolicy(alpha=settings.alpha, min_hits=settings.min_hits,
                                    min_ratio=settings.min_ratio, min_rate=settings.min_rate)
        self._pending: Counter[tuple[str, str]] = Counter()
        self._bucket: int | None = None
        self._lock = threading.Lock()

    def bucket(self, ts: float | None = None) -> int:
        return int((self.clock() if ts is None else ts) // self.settings.bucket_seconds)

    def observe(self, result: ScanResult) -> None:
        """Count one scanned message (buffered; ``flush`` writes to the shared counters)."""
        with self._lock:
            bucket = self.bucket()
            if self._bucket is not None and bucket != self._bucket:
                self._flush_locked()
            self._bucket = bucket
            self._pending[("all", "seen")] += 1
            for subject in subjects_of(result):
                self._pending[(subject, "hits")] += 1

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._pending and self._bucket is not None:
            self.counters.add(self._bucket, dict(self._pending))
        self._pending = Counter()

    def _windows(self) -> tuple[int, int, int, int]:
        """(now, first bucket of the test window, first and last bucket of the baseline)."""
        s = self.settings
        now_bucket = self.bucket()
        first = now_bucket - s.window_buckets + 1
        return now_bucket, first, first - s.baseline_buckets, first - 1

    def warm(self) -> bool:
        """Does the baseline window hold ``warmup_messages`` messages (see the module doc)?"""
        self.flush()
        _, _, base_first, base_last = self._windows()
        seen = self.counters.sums(["all"], base_first, base_last).get(("all", "seen"), 0)
        return seen >= self.settings.warmup_messages

    def evaluate(self, young: Callable[[str], bool] = lambda subject: False) -> list[Trip]:
        """Judge every subject seen in the test window. ``young(subject)`` says whether the
        subject's artifact or rule was promoted recently (blast-radius cap)."""
        self.flush()
        s = self.settings
        now_bucket, first, base_first, base_last = self._windows()
        subjects = {x for x in self.counters.subjects(first, now_bucket) if x != "all"}
        if not subjects:
            return []
        window = self.counters.sums([*subjects, "all"], first, now_bucket)
        base = self.counters.sums([*subjects, "all"], base_first, base_last)
        n, base_n = window.get(("all", "seen"), 0), base.get(("all", "seen"), 0)
        warm = base_n >= s.warmup_messages
        hour_first = now_bucket - max(1, 3600 // s.bucket_seconds) + 1
        hour = self.counters.sums(list(subjects), hour_first, now_bucket)
        trips: list[Trip] = []
        for subject in sorted(subjects):
            k = window.get((subject, "hits"), 0)
            j = judge(k, n, base.get((subject, "hits"), 0), base_n, self.policy)
            is_young: bool | None = None
            if j.trip:
                is_young = young(subject)
                if warm or is_young:
                    trips.append(Trip(subject, "rate", j, j.reason))
                    continue
            last_hour = hour.get((subject, "hits"), 0)
            if last_hour > s.young_max_per_hour and (
                    is_young if is_young is not None else young(subject)):
                trips.append(Trip(subject, "blast_radius", j,
                                  f"{last_hour} quarantines in the last hour by an artifact "
                                  f"younger than {s.young_days:g} days (cap "
                                  f"{s.young_max_per_hour}/h)"))
        return trips
