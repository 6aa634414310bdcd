"""``mailsift train``: train the content model from labelled sources.

    mailsift train [--corpus DIR] [--source LABEL:[NAME=]PATH ...] [--only NAME ...]
                   [--exclude NAME ...] [--cap N] [--workers N] [--out FILE.json]
                   [--name NAME] [--c C] [--folds K] [--include-noncommercial]

Sources default to the corpus MANIFEST (``../shared/corpus/MANIFEST.tsv``: label, source, file).
Sources whose terms forbid commercial use (CC BY-NC, such as ``phishing_pot``) are left out
unless ``--include-noncommercial`` is given: the shipped model learns from none of them.
Calibration and the reported metrics use source-grouped folds. Writes FILE.json (metadata, model
card data) and FILE.npz (arrays); nothing is pickled.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mailsift.core.errors import InputError
from mailsift.ml.corpus import LabelledSource, parse_source_spec, read_manifest, sources_by_name

__all__ = ["register", "select_sources", "trainable"]

DEFAULT_CORPUS = Path("../shared/corpus")


def add_source_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", type=Path, metavar="DIR",
                   help=f"folder with MANIFEST.tsv (default {DEFAULT_CORPUS})")
    p.add_argument("--source", action="append", default=[], metavar="LABEL:[NAME=]PATH",
                   help="a labelled mbox/eml source (instead of the corpus); repeatable")
    p.add_argument("--only", action="extend", nargs="+", default=[], metavar="NAME",
                   help="use only these sources")
    p.add_argument("--exclude", action="extend", nargs="+", default=[], metavar="NAME",
                   help="leave these sources out")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="parallel processes")
    p.add_argument("--include-noncommercial", action="store_true",
                   help="also learn from sources whose terms forbid commercial use (CC BY-NC); "
                        "the resulting model inherits those terms and is never shipped")


def select_sources(args: argparse.Namespace) -> list[LabelledSource]:
    if args.workers < 1:
        raise InputError("--workers must be at least 1")
    if args.source:
        sources = [parse_source_spec(s) for s in args.source]
    else:
        sources = read_manifest(args.corpus or DEFAULT_CORPUS)
    if args.only:
        sources = sources_by_name(sources, args.only)
    if args.exclude:
        sources_by_name(sources, args.exclude)  # a typo must not silently keep a source in
        sources = [s for s in sources if s.name not in args.exclude]
    if not sources:
        raise InputError("no sources selected")
    return sources


def trainable(sources: list[LabelledSource], args: argparse.Namespace) -> list[LabelledSource]:
    """The sources a model may learn from: non-commercial ones only when asked for, and said
    so either way (the shipped model learns from none, docs/model-card.md)."""
    if getattr(args, "include_noncommercial", False):
        for s in sources:
            if s.noncommercial:
                print(f"note: learning from {s.name} ({s.licence}): the model inherits these "
                      f"terms and must not ship in the package", file=sys.stderr)
        return sources
    kept = [s for s in sources if not s.noncommercial]
    for s in sources:
        if s.noncommercial:
            print(f"note: not learning from {s.name} ({s.licence}); --include-noncommercial "
                  f"to learn from it", file=sys.stderr)
    if not kept:
        raise InputError("every selected source is non-commercial; --include-noncommercial "
                         "to learn from them anyway")
    return kept


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("train", help="train the content model from labelled sources",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(p)
    p.add_argument("--cap", type=int, default=2000, metavar="N",
                   help="at most N messages per source, evenly sampled (0 = all)")
    p.add_argument("--out", type=Path, default=Path("model.json"), metavar="FILE.json")
    p.add_argument("--name", default="", help="model name (default: the file name)")
    p.add_argument("--c", type=float, default=None, help="inverse regularisation strength")
    p.add_argument("--folds", type=int, default=None, metavar="K",
                   help="grouped folds for calibration and metrics (default: hold out one "
                        "source group at a time)")
    p.add_argument("--objective", choices=("threat", "multinomial"), default=None,
                   help="threat: ham against spam+phish (default, one threat probability); "
                        "multinomial: separate ham/spam/phish probabilities")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from mailsift.ml.model import save_model
    from mailsift.ml.train import TrainOptions, extract_examples, train_model

    sources = trainable(select_sources(args), args)
    options = TrainOptions()
    if args.c is not None:
        options = replace(options, c=args.c)
    if args.folds is not None:
        options = replace(options, folds=args.folds)
    if args.objective is not None:
        options = replace(options, objective=args.objective)

    def progress(name: str, count: int) -> None:
        print(f"features: {name}: {count} messages", file=sys.stderr)

    examples = extract_examples(sources, args.cap, args.workers, progress)
    name = args.name or args.out.stem
    model, report = train_model(examples, options, name, sources)
    path = save_model(model, args.out)
    print(f"wrote {path} and {path.with_suffix('.npz')}: model {model.name} version "
          f"{model.version}, {len(model.vocabulary)} features, {len(examples)} messages from "
          f"{len(report.sources)} sources, temperature {model.temperature}, "
          f"{report.seconds:.0f} s")
    for source, row in report.metrics.get("per_source_out_of_fold", {}).items():
        print(f"  held out {source:30s} {row['label']:6s} accuracy {row['accuracy']:.4f} "
              f"threat@0.5 {row['threat_rate_at_0.5']:.4f}")
    for rate, threshold in report.metrics.get("ham_threshold_every_source", {}).items():
        print(f"  p_threat at which every ham source (held out by group) has <= "
              f"{float(rate):.2%} of its messages: {threshold:.2f}")
    for key, value in report.metrics.get("ham_threat_thresholds", {}).items():
        print(f"  p_threat above which {key} of out-of-fold ham lies: {value}")
    return 0
