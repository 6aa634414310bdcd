"""Numbers from eval records: false-positive rates per action, catch rates, confusion tables,
ROC/PR curves and threshold selection for a target false-positive rate.

Rates are "at this action or stricter" (a quarantined ham message was also not in the inbox), so
``ham_quarantine`` is the rate users care about most: legitimate mail they must go and fetch.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mailsift.core.verdict import Action
from mailsift.eval.runner import Record

__all__ = ["choose_threshold", "confusion", "curves", "rates", "summarise"]

_LEVELS = (("junk", Action.JUNK), ("quarantine", Action.QUARANTINE), ("reject", Action.REJECT))


def _at_least(records: Sequence[Record], level: Action, promoted: bool = False) -> int:
    # tempfail is not a judgement on the message (a detector failed); it is counted apart
    actions = ((r.promoted_action or r.action) if promoted else r.action for r in records)
    return sum(1 for a in actions if Action(a).strictness >= level.strictness and a != "tempfail")


def rates(records: Sequence[Record]) -> dict[str, Any]:
    """Counts and rates of one group of records (one source, one label, or everything)."""
    n = len(records)
    out: dict[str, Any] = {"messages": n}
    if not n:
        return out
    for name, level in _LEVELS:
        k = _at_least(records, level)
        out[f"{name}_or_worse"] = k
        out[f"{name}_or_worse_rate"] = round(k / n, 6)
    # the same with the rule packs' shadow rules acting (as a site gets after promoting them)
    for name, level in _LEVELS:
        k = _at_least(records, level, promoted=True)
        out[f"promoted_{name}_or_worse"] = k
        out[f"promoted_{name}_or_worse_rate"] = round(k / n, 6)
    out["tempfail"] = sum(1 for r in records if r.action == "tempfail")
    out["actions"] = dict(Counter(r.action for r in records))
    out["ms_per_message"] = round(sum(r.elapsed_ms for r in records) / n, 3)
    out["ml_ms_per_message"] = round(sum(r.ml_ms for r in records) / n, 3)
    return out


def confusion(records: Sequence[Record]) -> dict[str, dict[str, int]]:
    """label -> final category -> count."""
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for r in records:
        table[r.label][r.category] += 1
    return {label: dict(sorted(c.items())) for label, c in sorted(table.items())}


def curves(records: Sequence[Record]) -> dict[str, Any]:
    """ROC and precision-recall of the model's scores: threat (spam+phish vs ham) and phish."""
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    out: dict[str, Any] = {}
    # A binary (ham/threat) model has no phish class: its phish curve is the threat score on
    # phish against ham (how well it ranks phish), not a flat line at AUC 0.5.
    phish_score = "p_phish" if any(r.p_phish > 0 for r in records) else "p_threat"
    for name, positive, attr in (("threat", ("spam", "phish"), "p_threat"),
                                 ("phish", ("phish",), phish_score)):
        rows = [r for r in records if r.label == "ham" or r.label in positive]
        y = np.array([r.label in positive for r in rows], dtype=int)
        if len(set(y.tolist())) < 2:
            continue
        s = np.array([getattr(r, attr) for r in rows])
        fpr, tpr, _ = roc_curve(y, s)
        precision, recall, _ = precision_recall_curve(y, s)
        out[name] = {
            "score": attr,
            "roc_auc": round(float(auc(fpr, tpr)), 5),
            "pr_auc": round(float(auc(recall, precision)), 5),
            "fpr": fpr.tolist(), "tpr": tpr.tolist(),
            "precision": precision.tolist(), "recall": recall.tolist(),
        }
    return out


def choose_threshold(records: Sequence[Record], target_fpr: float, score: str = "p_threat",
                     positive: tuple[str, ...] = ("spam", "phish")) -> dict[str, Any]:
    """The lowest score threshold at which *every* ham source stays at or under ``target_fpr``,
    and what it catches. Small sources make this strict: 0.1% of 97 messages is zero."""
    ham_by_source: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if r.label == "ham":
            ham_by_source[r.source].append(getattr(r, score))
    # Source s may flag floor(target * n_s) messages: the threshold must lie above its next one.
    bound = -1.0
    for scores in ham_by_source.values():
        allowed = int(target_fpr * len(scores) + 1e-9)
        ranked = sorted(scores, reverse=True)
        if allowed < len(ranked):
            bound = max(bound, ranked[allowed])
    above = [s for s in {getattr(r, score) for r in records} if s > bound]
    chosen = min(above) if above else 1.0 + 1e-9
    pos = [r for r in records if r.label in positive]
    ham = [r for r in records if r.label == "ham"]
    by_source = {
        src: round(sum(1 for r in rs if getattr(r, score) >= chosen) / len(rs), 4)
        for src, rs in _group(pos).items()
    }
    return {
        "score": score, "target_fpr": target_fpr, "threshold": round(chosen, 6),
        "ham_rate": round(sum(1 for r in ham if getattr(r, score) >= chosen) / max(len(ham), 1),
                          6),
        "catch_rate": round(sum(1 for r in pos if getattr(r, score) >= chosen)
                            / max(len(pos), 1), 4),
        "catch_by_source": by_source,
    }


def _group(records: Sequence[Record]) -> dict[str, list[Record]]:
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        groups[r.source].append(r)
    return groups


def summarise(records: Sequence[Record], target_fpr: float = 0.001,
              extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The whole report as plain data (what ``--format json`` prints)."""
    by_label: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_label[r.label].append(r)
    per_source = {src: {"label": rs[0].label, **rates(rs)} for src, rs in _group(records).items()}
    ham_sources = [v for v in per_source.values() if v["label"] == "ham"]
    report: dict[str, Any] = {
        **dict(extra or {}),
        "messages": len(records),
        "per_source": per_source,
        "per_label": {label: rates(rs) for label, rs in sorted(by_label.items())},
        "worst_ham_quarantine_rate": max(
            (v.get("quarantine_or_worse_rate", 0.0) for v in ham_sources), default=0.0),
        "worst_ham_quarantine_rate_promoted": max(
            (v.get("promoted_quarantine_or_worse_rate", 0.0) for v in ham_sources), default=0.0),
        "confusion": confusion(records),
        "thresholds": [choose_threshold(records, target_fpr, "p_threat"),
                       choose_threshold(records, target_fpr, "p_phish" if any(
                           r.p_phish > 0 for r in records) else "p_threat", ("phish",))],
    }
    return report
