"""ROC and precision-recall curves as PNG files (matplotlib, headless Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["write_curves"]


def write_curves(curves: Mapping[str, Mapping[str, Any]], out_dir: Path, prefix: str = ""
                 ) -> list[Path]:
    """One ``roc.png`` and one ``pr.png`` with a line per score (threat, phish)."""
    import matplotlib

    matplotlib.use("Agg")  # no display here, and never pick one up from the environment
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, xkey, ykey, xlabel, ylabel in (
        ("roc", "fpr", "tpr", "ham flagged (false-positive rate)", "caught (true-positive rate)"),
        ("pr", "recall", "precision", "recall", "precision"),
    ):
        fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
        for name, data in curves.items():
            area = data["roc_auc"] if kind == "roc" else data["pr_auc"]
            ax.plot(data[xkey], data[ykey], label=f"{name} vs ham (AUC {area:.4f})")
        if kind == "roc":
            ax.set_xscale("symlog", linthresh=1e-3)
            ax.set_xlim(0, 1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{prefix}{kind.upper()} of the content model (full-pipeline eval)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right" if kind == "roc" else "lower left")
        path = out_dir / f"{prefix}{kind}.png"
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
