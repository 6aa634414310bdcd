"""Leave-one-source-out: for each source S, train without S, then scan S with the full pipeline.

This is the honest number for mail the model has never seen: a held-out *source* has its own
mailbox, era and senders, where a random split would share them with training. Features of every
training source are extracted once; each fold only refits the linear model (its vocabulary is
chosen from its own training sources) and reuses the configured model's calibration temperature.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mailsift.config.schema import Settings
from mailsift.eval.runner import Record, eval_settings, scan_sources
from mailsift.ml.corpus import LabelledSource
from mailsift.ml.model import save_model
from mailsift.ml.train import Example, FeatureTable, TrainOptions, extract_examples

__all__ = ["leave_one_source_out"]


def leave_one_source_out(settings: Settings, sources: Sequence[LabelledSource], *,
                         train_cap: int, eval_cap: int, workers: int, temperature: float,
                         options: TrainOptions | None = None,
                         only: Sequence[str] = (),
                         log: Callable[[str], None] | None = None) -> list[Record]:
    """Records of every held-out source (``only`` restricts which sources are held out)."""
    options = options or TrainOptions()
    say = log or (lambda _msg: None)
    examples: list[Example] = extract_examples(
        sources, train_cap, workers, progress=lambda n, c: say(f"features: {n} ({c})"))
    table = FeatureTable(examples, options)
    records: list[Record] = []
    with tempfile.TemporaryDirectory(prefix="mailsift-loso-") as tmp:
        for source in sources:
            if only and source.name not in only:
                continue
            rows = np.flatnonzero(table.source_of != table.sources.index(source.name))
            labels = {examples[int(i)].label for i in rows}
            if "ham" not in labels or len(labels) < 2:
                say(f"skip {source.name}: the rest has no ham or no threat to learn from")
                continue
            model = table.fit(rows, name=f"loso-without-{source.name}", temperature=temperature)
            path = save_model(model, Path(tmp) / f"fold-{source.name}.json")
            fold = scan_sources(eval_settings(settings, str(path)), [source], cap=eval_cap,
                                workers=workers)
            records.extend(fold)
            say(f"held out {source.name}: {len(fold)} scanned")
    return records
