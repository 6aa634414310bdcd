"""Settings of safe rollout: the promotion gate, shadow period, circuit breaker and alerts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RolloutSettings"]


class RolloutSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    artifacts_dir: str = Field("", description="local copies of every staged version; "
                               "empty = <store.data_dir>/artifacts")
    known_good: tuple[str, ...] = Field(
        (), description="ham corpora (eml/mbox/maildir/folders) every candidate is replayed on")
    reported_ham: bool = Field(
        True, description="replay messages users reported as not junk, once an analyst "
        "confirmed the report, as known-good mail beside the known_good corpora")
    robustness_set: bool = Field(
        True, description="replay the shipped robustness set on every check: its legitimate "
        "mail as known-good, its lures as threats the candidate must keep catching (junk or "
        "stricter) when the active set does")
    golden_budget: int = Field(0, ge=0, description="quarantines allowed on known-good mail")
    min_known_good: int = Field(
        20, ge=0, description="known-good messages (ham-labelled corpora, confirmed not-junk "
        "reports, any other known-good source) the gate must replay before it may pass; "
        "below it the gate refuses (an audited --force overrides)")
    traffic_budget: float = Field(0.0001, ge=0, le=1,
                                  description="share of ham-classified stored traffic a "
                                  "candidate may newly quarantine (0.01%)")
    recent_messages: int = Field(5000, ge=0, description="stored messages the gate replays")
    min_shadow_hours: float = Field(24.0, ge=0, description="shadow time before promotion")
    builtin_upgrades: Literal["shadow", "active"] = Field(
        "shadow", description='a new release\'s built-in rule pack and model: "shadow" stages '
        "them beside the versions this site enforces (they act once promoted through the "
        'gate); "active" enforces them at once, the previous version kept as rollback target')
    # circuit breaker
    breaker_enabled: bool = True
    counters_url: str = Field("", description='"redis://host:6379/0" to share counters between '
                              "nodes; empty = this node's memory")
    bucket_seconds: int = Field(60, ge=1)
    window_buckets: int = Field(10, ge=1, description="test window (10 x 60 s)")
    baseline_buckets: int = Field(1440, ge=1, description="baseline window before the test "
                                  "window (24 h)")
    check_seconds: float = Field(30.0, gt=0)
    alpha: float = Field(1e-6, gt=0, lt=1)
    min_hits: int = Field(10, ge=1)
    min_ratio: float = Field(3.0, ge=1)
    min_rate: float = Field(0.001, gt=0, lt=1)
    warmup_messages: int = Field(
        1000, ge=0, description="messages the baseline window must hold before an established "
        "rule or category may alert (a fresh install has no baseline yet); young ones are "
        "judged from the first message")
    young_days: float = Field(7.0, ge=0, description="blast-radius cap applies this long "
                              "after promotion")
    young_max_per_hour: int = Field(100, ge=1)
    # alerts
    alert_webhook: str = Field("", description="URL that receives every alert as a JSON POST")
    alert_mail_to: tuple[str, ...] = Field(
        (), description="addresses mailed every alert (sent through [store] release_host:port)")
