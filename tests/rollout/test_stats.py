from __future__ import annotations

import math

import pytest

from mailsift.rollout.stats import BreakerPolicy, judge, poisson_sf


def test_poisson_tail_matches_direct_sum() -> None:
    for lam in (0.5, 3.0, 40.0):
        for k in (0, 1, 2, 5, 30, 80):
            direct = 1 - sum(math.exp(-lam) * lam**i / math.factorial(i) for i in range(k))
            assert poisson_sf(k, lam) == pytest.approx(max(direct, 0.0), rel=1e-6, abs=1e-12)
    assert poisson_sf(200, 1.0) < 1e-300 or poisson_sf(200, 1.0) == 0.0


def test_a_spike_over_baseline_trips() -> None:
    # an "invoice" rule that normally quarantines 0.1% now quarantines 4% of 2000 messages
    j = judge(k=80, n=2000, baseline_k=50, baseline_n=50_000)
    assert j.trip and j.p_value < 1e-6
    assert "80 quarantined of 2000" in j.reason


def test_normal_variation_and_tiny_counts_do_not_trip() -> None:
    assert not judge(k=3, n=2000, baseline_k=50, baseline_n=50_000).trip  # within noise
    assert not judge(k=4, n=10, baseline_k=0, baseline_n=0).trip  # too few hits
    # a statistically visible but small shift (1.5x) is not an incident
    assert not judge(k=300, n=100_000, baseline_k=2000, baseline_n=1_000_000).trip


def test_new_artifact_without_baseline_uses_the_floor() -> None:
    j = judge(k=40, n=1000, baseline_k=0, baseline_n=0, policy=BreakerPolicy(min_rate=0.001))
    assert j.baseline == 0.001 and j.trip
