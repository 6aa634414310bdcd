"""Eval numbers: rates at each action, confusion, curves, threshold selection."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mailsift.eval.metrics import choose_threshold, confusion, curves, rates, summarise
from mailsift.eval.runner import Record


def _r(source: str, label: str, action: str, p: float, category: str = "clean") -> Record:
    return Record(source, label, "id", category, action, p, 0.0, p, 1.0)


def test_rates_count_this_action_or_stricter() -> None:
    recs = [_r("h", "ham", "deliver", 0.1), _r("h", "ham", "junk", 0.6),
            _r("h", "ham", "quarantine", 0.9), _r("h", "ham", "reject", 0.99),
            _r("h", "ham", "tempfail", 0.1)]
    out = rates(recs)
    assert out["junk_or_worse"] == 3
    assert out["quarantine_or_worse"] == 2
    assert out["reject_or_worse"] == 1
    assert out["tempfail"] == 1
    assert out["quarantine_or_worse_rate"] == pytest.approx(0.4)


def test_promoted_rates_read_the_shadow_verdict() -> None:
    # a rule pack's shadow rules would have quarantined the second message: the promoted rates
    # say so, the shipped rates do not; a record without a shadow verdict counts as shipped
    recs = [_r("p", "phish", "deliver", 0.1),
            replace(_r("p", "phish", "deliver", 0.2), promoted_action="quarantine"),
            _r("p", "phish", "junk", 0.9)]
    out = rates(recs)
    assert out["junk_or_worse"] == 1
    assert out["promoted_junk_or_worse"] == 2
    assert out["promoted_quarantine_or_worse"] == 1
    assert summarise(recs)["per_label"]["phish"]["promoted_junk_or_worse_rate"] == \
        pytest.approx(2 / 3, abs=1e-6)


def test_threshold_keeps_every_ham_source_under_target() -> None:
    recs = [_r("a", "ham", "deliver", i / 1000) for i in range(1000)]  # a: 0.000 .. 0.999
    recs += [_r("b", "ham", "deliver", 0.2) for _ in range(9)] + [_r("b", "ham", "deliver", 0.95)]
    recs += [_r("p", "phish", "junk", 0.5 + i / 200) for i in range(100)]
    sel = choose_threshold(recs, 0.001)
    # b (10 messages) may flag none: above 0.95; a may flag 1 of 1000 (0.999): above 0.998
    assert sel["threshold"] == pytest.approx(0.999)
    assert sel["catch_rate"] == 0.0
    # at 10%: a may flag 100 (down to 0.9), b one (its 0.95): the first score above 0.899
    assert choose_threshold(recs, 0.1)["threshold"] == pytest.approx(0.9)
    assert choose_threshold(recs, 0.1)["catch_rate"] == pytest.approx(0.2)
    loose = choose_threshold(recs, 0.2)
    assert loose["threshold"] < sel["threshold"]


def test_confusion_and_summary() -> None:
    recs = [_r("h", "ham", "deliver", 0.1), _r("p", "phish", "quarantine", 0.9, "phish"),
            _r("p", "phish", "junk", 0.7, "spam"), _r("s", "spam", "junk", 0.8, "spam")]
    assert confusion(recs) == {"ham": {"clean": 1}, "phish": {"phish": 1, "spam": 1},
                               "spam": {"spam": 1}}
    report = summarise(recs)
    assert report["per_label"]["phish"]["junk_or_worse_rate"] == 1.0
    assert report["worst_ham_quarantine_rate"] == 0.0
    assert set(report["per_source"]) == {"h", "p", "s"}


def test_curves_and_plots(tmp_path: Path) -> None:
    from mailsift.eval.plots import write_curves

    recs = [_r("h", "ham", "deliver", 0.1 * i) for i in range(5)]
    recs += [_r("p", "phish", "junk", 0.3 + 0.1 * i) for i in range(5)]
    data = curves(recs)
    assert 0.5 < data["threat"]["roc_auc"] <= 1.0
    paths = write_curves(data, tmp_path)
    assert [p.name for p in paths] == ["roc.png", "pr.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
