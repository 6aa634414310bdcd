"""Render an eval summary (``metrics.summarise``) as a readable text table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["render_text"]


def _pct(value: float) -> str:
    return f"{value * 100:7.3f}%"


def render_text(report: Mapping[str, Any]) -> str:
    lines = []
    head = report.get("mode", "eval")
    model = report.get("model", {})
    lines.append(f"mailsift eval ({head}) - {report['messages']} messages, full offline pipeline; "
                 f"model {model.get('name', '?')} {model.get('version', '')}")
    lines.append("")
    lines.append(f"{'source':30s} {'label':6s} {'msgs':>6s} {'junk+':>9s} {'quar+':>9s} "
                 f"{'reject':>9s} {'ms/msg':>7s} {'ml ms':>6s} {'junk+ P':>9s} {'quar+ P':>9s}")
    for name, row in sorted(report["per_source"].items(), key=lambda kv: (kv[1]["label"], kv[0])):
        lines.append(f"{name:30s} {row['label']:6s} {row['messages']:6d} "
                     f"{_pct(row.get('junk_or_worse_rate', 0))} "
                     f"{_pct(row.get('quarantine_or_worse_rate', 0))} "
                     f"{_pct(row.get('reject_or_worse_rate', 0))} "
                     f"{row.get('ms_per_message', 0):7.2f} {row.get('ml_ms_per_message', 0):6.2f} "
                     f"{_pct(row.get('promoted_junk_or_worse_rate', 0))} "
                     f"{_pct(row.get('promoted_quarantine_or_worse_rate', 0))}")
    lines.append("")
    lines.append("per label (ham: false-positive rates; spam/phish: catch rates)")
    for label, row in report["per_label"].items():
        lines.append(f"  {label:6s} {row['messages']:6d}  "
                     f"junk or worse {_pct(row['junk_or_worse_rate'])}"
                     f"  quarantine or worse {_pct(row['quarantine_or_worse_rate'])}"
                     f"  reject {_pct(row['reject_or_worse_rate'])}"
                     f"  promoted: junk+ {_pct(row['promoted_junk_or_worse_rate'])}"
                     f" quarantine+ {_pct(row['promoted_quarantine_or_worse_rate'])}")
    lines.append(f"  worst ham source, quarantine or worse: "
                 f"{_pct(report['worst_ham_quarantine_rate'])}")
    lines.append("  (P / promoted: the same with the rule packs' shadow rules acting)")
    lines.append("")
    lines.append("confusion (label -> final category)")
    for label, row in report["confusion"].items():
        cells = "  ".join(f"{cat}={n}" for cat, n in row.items())
        lines.append(f"  {label:6s} {cells}")
    lines.append("")
    for sel in report["thresholds"]:
        lines.append(f"threshold on {sel['score']} for ham rate <= {sel['target_fpr']:.4%} on "
                     f"every ham source: {sel['threshold']:.4f} -> "
                     f"catches {_pct(sel['catch_rate'])} "
                     f"(ham overall {_pct(sel['ham_rate'])})")
    curves = report.get("curves", {})
    for name, data in curves.items():
        lines.append(f"{name} ({data.get('score', 'p_' + name)} against ham): ROC AUC "
                     f"{data['roc_auc']:.4f}, PR AUC {data['pr_auc']:.4f}")
    for path in report.get("plots", []):
        lines.append(f"wrote {path}")
    return "\n".join(lines)
