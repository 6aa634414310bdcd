"""``mailsift eval``: run the full pipeline over labelled sources and report honestly.

    mailsift eval [--corpus DIR] [--source LABEL:[NAME=]PATH ...] [--only NAME ...]
                  [--exclude NAME ...] [--cap N] [--workers N] [--loso] [--train-cap N]
                  [--held-out NAME ...] [--model FILE.json] [--config FILE]
                  [--format text|json] [--plots DIR] [--target-fpr F] [--records FILE.jsonl]
                  [--include-noncommercial]

Reports per source and overall the ham rate at each action (junk, quarantine, reject or
stricter), spam/phish catch rates, a confusion table, ROC/PR curves of the model (PNG with
``--plots``), and the model threshold that keeps every ham source under ``--target-fpr``.
``--loso`` trains a model without each source and evaluates on that source (leave-one-source-out):
the honest number for unseen mail. Like ``train``, its folds learn from no non-commercial source
unless ``--include-noncommercial`` is given; such sources are still scanned. Without
``--loso``, a model evaluated on its own training sources measures memory: the report says
which mode it ran in.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mailsift.core.errors import InputError
from mailsift.interfaces.cli.train import add_source_arguments, select_sources, trainable

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("eval", help="measure false-positive and catch rates on labelled mail",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(p)
    p.add_argument("--cap", type=int, default=2000, metavar="N",
                   help="scan at most N messages per source, evenly sampled (0 = all)")
    p.add_argument("--loso", action="store_true", help="leave-one-source-out")
    p.add_argument("--train-cap", type=int, default=2000, metavar="N",
                   help="with --loso: messages per source to train each fold on")
    p.add_argument("--held-out", nargs="+", default=[], metavar="NAME",
                   help="with --loso: hold out only these sources (all others still train)")
    p.add_argument("--model", metavar="FILE.json", help="model to evaluate (default: [ml])")
    p.add_argument("--config", metavar="FILE")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--plots", type=Path, metavar="DIR", help="write roc.png and pr.png here")
    p.add_argument("--target-fpr", type=float, default=0.001, metavar="F",
                   help="ham rate to choose model thresholds for (default 0.001 = 0.1%%)")
    p.add_argument("--records", type=Path, metavar="FILE.jsonl",
                   help="also write one JSON line per scanned message")
    p.add_argument("--compare", action="store_true",
                   help="compare the linear model with the MiniLM embedding model "
                        "(model only, leave-one-source-out; needs the [transformer] extra)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mailsift.config import load_settings
    from mailsift.detectors.ml import cached_model
    from mailsift.eval.metrics import curves, summarise
    from mailsift.eval.runner import eval_settings, scan_sources
    from mailsift.ml.model import shipped_model_path

    if not 0 < args.target_fpr < 1:
        raise InputError("--target-fpr must be between 0 and 1")
    sources = select_sources(args)
    if args.compare:
        return _compare(args, sources)
    settings = eval_settings(load_settings(args.config).settings, args.model)
    model = cached_model(settings.ml.model_path or shipped_model_path())
    say = (lambda msg: print(msg, file=sys.stderr)) if args.format == "text" else None
    if args.loso:
        from mailsift.eval.loso import leave_one_source_out

        records = leave_one_source_out(
            settings, sources, train_cap=args.train_cap, eval_cap=args.cap,
            workers=args.workers, temperature=model.temperature, only=args.held_out,
            train_on=trainable(sources, args), log=say)
        mode = "leave-one-source-out"
    else:
        records = scan_sources(settings, sources, cap=args.cap, workers=args.workers)
        trained_on = set(model.metadata.get("training_sources", {}))
        seen = sorted(trained_on & {s.name for s in sources})
        mode = "model-as-configured" + (f" (trained on {len(seen)} of these sources: "
                                         "optimistic)" if seen else "")
    if not records:
        raise InputError("no messages were evaluated")
    report = summarise(records, args.target_fpr, extra={
        "mode": mode,
        "model": {"name": model.name, "version": model.version},
        "sources": {s.name: {"label": s.label, "file": str(s.path)} for s in sources},
    })
    report["curves"] = curves(records)
    if args.plots:
        from mailsift.eval.plots import write_curves

        report["plots"] = [str(p) for p in write_curves(report["curves"], args.plots)]
    if args.records:
        with args.records.open("w", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps(asdict(r)) + "\n")
    if args.format == "json":
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from mailsift.eval.report import render_text

        print(render_text(report))
    return 0


def _compare(args: argparse.Namespace, sources: list[Any]) -> int:
    from mailsift.eval.compare import compare_models

    say = (lambda msg: print(msg, file=sys.stderr)) if args.format == "text" else None
    report = compare_models(sources, args.cap, args.target_fpr, log=say)
    if args.format == "json":
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"{report['mode']}: {report['messages']} messages, at most {report['cap_per_source']} "
          f"per source")
    for m in report["models"]:
        print(f"  {m['model']}: ROC AUC {m['roc_auc']:.4f}, accuracy@0.5 "
              f"{m['accuracy_at_0.5']:.4f} (ham flagged {m['ham_flagged_at_0.5']:.4f}, threats "
              f"caught {m['threats_caught_at_0.5']:.4f}), catch at <= {args.target_fpr:.2%} ham "
              f"per source {m['catch_at_target']:.4f}, {m['ms_per_message']:.2f} ms/message")
    return 0
