"""The circuit breaker's statistics: is a quarantine rate abnormally high for its baseline?

Model: in a window with ``n`` scanned messages, an artifact (or rule, or category) that normally
quarantines a share ``p0`` of mail produces ``k`` quarantines. Under "nothing changed" ``k`` is
Binomial(n, p0); quarantines are rare, so we use its Poisson limit with mean ``lam = n * p0`` and
trip when the upper tail ``P(X >= k)`` is below ``alpha`` (default 1e-6: at one test per subject
per minute that is one false alarm in about two years per subject). Three guards keep it sane:

* ``p0`` is floored at ``min_rate`` so a brand-new rule with a zero baseline does not trip on its
  first hit (the blast-radius cap handles young artifacts instead);
* ``k`` must reach ``min_hits``, and the observed rate must be at least ``min_ratio`` times the
  baseline, so tiny or merely statistically-detectable shifts do not demote a rule;
* the baseline comes from a long window that *excludes* the test window, so a spike does not
  raise its own baseline.

The Poisson tail is computed exactly in log space (``k`` is at most a few thousand per window).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BreakerPolicy", "Judgement", "judge", "poisson_sf"]


def poisson_sf(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam)."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    # 1 - P(X <= k-1), summed in log space; for k far above lam the tail is dominated by its
    # first terms, so sum upward from k until terms vanish instead (better precision).
    if k > lam:
        log_term = -lam + k * math.log(lam) - math.lgamma(k + 1)
        total = 0.0
        i = k
        term = math.exp(log_term)
        while term > total * 1e-17 and i < k + 10_000:
            total += term
            i += 1
            term *= lam / i
        return min(1.0, total)
    cdf = 0.0
    term = math.exp(-lam)
    for i in range(k):
        cdf += term
        term *= lam / (i + 1)
    return max(0.0, 1.0 - cdf)


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    alpha: float = 1e-6
    min_hits: int = 10
    min_ratio: float = 3.0
    min_rate: float = 0.001


@dataclass(frozen=True, slots=True)
class Judgement:
    trip: bool
    k: int
    n: int
    baseline: float
    expected: float
    p_value: float
    reason: str


def judge(k: int, n: int, baseline_k: int, baseline_n: int,
          policy: BreakerPolicy | None = None) -> Judgement:
    """Should a subject with ``k`` of ``n`` now (``baseline_k`` of ``baseline_n`` before) trip?"""
    policy = policy or BreakerPolicy()
    p0 = max(policy.min_rate, baseline_k / baseline_n if baseline_n else 0.0)
    lam = n * p0
    p_value = poisson_sf(k, lam)
    rate = k / n if n else 0.0
    if k < policy.min_hits:
        return Judgement(False, k, n, p0, lam, p_value, f"{k} < {policy.min_hits} hits")
    if rate < policy.min_ratio * p0:
        return Judgement(False, k, n, p0, lam, p_value,
                         f"rate {rate:.4f} < {policy.min_ratio:g} x baseline {p0:.4f}")
    if p_value >= policy.alpha:
        return Judgement(False, k, n, p0, lam, p_value, f"p={p_value:.2e} >= {policy.alpha:g}")
    return Judgement(True, k, n, p0, lam, p_value,
                     f"{k} quarantined of {n} scanned (expected {lam:.1f} at baseline "
                     f"{p0:.4f}); p={p_value:.1e} < {policy.alpha:g}")
