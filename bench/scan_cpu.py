"""CPU per message of one scan, in total and per stage, over the benchmark mix in one process.

Measured with ``time.process_time`` (CPU, not wall: this machine is shared), best of ``--runs``:

* total: ``Pipeline.scan`` per message, exactly as a scan worker runs it;
* stages: parse, the auth stage, each detector's ``run`` (the ML detector also split into feature
  extraction and scoring), and the policy decision, each timed on its own over the mix.

    python bench/scan_cpu.py [--mix PATH] [--runs 3] [--profile out.pstats]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_MIX = HERE.parent.parent / "shared" / "bench" / "mix-1000.mbox.gz"


def _best(runs: int, fn: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def _score_all(score: Callable[[Any], object], feats: list[Any]) -> None:
    for f in feats:
        score(f)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mix", type=Path, default=DEFAULT_MIX)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="also write a cProfile of whole scans")
    args = parser.parse_args()

    import mailsift
    from mailsift.config import load_settings
    from mailsift.core.context import ScanContext
    from mailsift.core.envelope import Envelope
    from mailsift.parsing import parse_message
    from mailsift.parsing.sources import iter_mbox
    from mailsift.pipeline.build import ScanOptions, build_pipeline
    from mailsift.pipeline.runner import message_facts
    from mailsift.policy import PolicyInput, decide

    settings = load_settings(None, environ={}, use_default_paths=False).settings
    pipeline = build_pipeline(settings, ScanOptions(offline=True))
    with gzip.open(args.mix, "rb") as fh:
        raws = list(iter_mbox(fh))
    n = len(raws)
    env = Envelope()
    print(f"{mailsift.__file__}: {n} messages, best of {args.runs}, CPU ms per message")

    def scan_all() -> None:
        for raw in raws:
            pipeline.scan(raw, env)

    scan_all()  # warm caches that live for the whole process (compiled patterns, PSL)
    total = _best(args.runs, scan_all)
    print(f"  {'scan total':<16} {total / n * 1000:7.3f}")

    stages: dict[str, float] = {}
    limits = pipeline.limits
    stages["parse_message"] = _best(args.runs,
                                    lambda: [parse_message(r, limits) for r in raws] and None)
    msgs = [parse_message(r, pipeline.limits) for r in raws]
    ctxs = [ScanContext(m, env, None, True, 0.0) for m in msgs]
    if pipeline.authenticate is not None:
        auth = pipeline.authenticate
        stages["auth"] = _best(args.runs, lambda: [auth(m, env) for m in msgs] and None)
        ctxs = [c.with_auth(auth(c.message, env)) for c in ctxs]
    findings: list[list[Any]] = [[] for _ in ctxs]
    for det in pipeline.detectors:
        run = det.run
        stages[det.name] = _best(args.runs, lambda run=run: [run(c) for c in ctxs] and None)
        for out, c in zip(findings, ctxs, strict=True):
            out.extend(run(c))
        if det.name == "ml":
            from mailsift.ml.features import extract

            score = det.model.score  # type: ignore[attr-defined]
            stages["  ml extract"] = _best(args.runs, lambda: [extract(m) for m in msgs] and None)
            feats = [extract(m) for m in msgs]
            stages["  ml score"] = _best(args.runs, partial(_score_all, score, feats))
    inputs = [PolicyInput(findings=tuple(f), facts=message_facts(c.message, env, c.auth),
                          auth=c.auth, lists=None, now=0.0) for f, c in zip(findings, ctxs,
                                                                             strict=True)]
    stages["policy"] = _best(args.runs,
                             lambda: [decide(i, pipeline.policy, None) for i in inputs] and None)
    for name, cpu in stages.items():
        print(f"  {name:<16} {cpu / n * 1000:7.3f}")
    summed = sum(v for k, v in stages.items() if not k.startswith(" "))
    print(f"  {'sum of stages':<16} {summed / n * 1000:7.3f}")

    if args.profile is not None:
        import cProfile

        prof = cProfile.Profile()
        prof.runcall(scan_all)
        prof.dump_stats(str(args.profile))
        print(f"profile written to {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
