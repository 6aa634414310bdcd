"""Leave-one-source-out, by group: for each group G of sources, train without G, then scan
each source of G with the full pipeline.

This is the honest number for mail the model has never seen: a held-out *source* has its own
mailbox, era and senders, where a random split would share them with training. Sources that come
from one organisation or collection (Enron's inboxes and its sent mail, a corpus's ham and spam;
:data:`mailsift.ml.corpus.SOURCE_GROUPS`) are held out together, or the model would have learnt
the organisation from its twin. Features of every training source are extracted once; each fold
only refits the linear model (its vocabulary is chosen from its own training sources) and reuses
the configured model's calibration temperature.
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
                         train_on: Sequence[LabelledSource] | None = None,
                         log: Callable[[str], None] | None = None) -> list[Record]:
    """Records of every held-out source (``only`` restricts which sources are scanned; each is
    still held out with its whole group). ``train_on`` (default: ``sources``) is what folds may
    learn from: a source outside it, such as non-commercial data the shipped model must not
    learn from, is scanned by a model trained on the rest of ``train_on``."""
    options = options or TrainOptions()
    say = log or (lambda _msg: None)
    learn = list(sources if train_on is None else train_on)
    examples: list[Example] = extract_examples(
        learn, train_cap, workers, progress=lambda n, c: say(f"features: {n} ({c})"))
    table = FeatureTable(examples, options)
    records: list[Record] = []
    with tempfile.TemporaryDirectory(prefix="mailsift-loso-") as tmp:
        for group in dict.fromkeys(s.group for s in sources):
            members = [s for s in sources if s.group == group and (not only or s.name in only)]
            if not members:
                continue
            rows = np.flatnonzero(table.group_of != table.groups.index(group)) \
                if group in table.groups else np.arange(len(examples))
            labels = {examples[int(i)].label for i in rows}
            if "ham" not in labels or len(labels) < 2:
                say(f"skip {group}: the rest has no ham or no threat to learn from")
                continue
            model = table.fit(rows, name=f"loso-without-{group}", temperature=temperature)
            path = save_model(model, Path(tmp) / f"fold-{group}.json")
            fold = scan_sources(eval_settings(settings, str(path)), members, cap=eval_cap,
                                workers=workers)
            records.extend(fold)
            say(f"held out {group} ({', '.join(s.name for s in members)}): {len(fold)} scanned")
    return records
