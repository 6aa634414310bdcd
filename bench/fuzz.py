"""Fuzz benchmark: N mutated messages (default 100,000) through the whole offline pipeline.

Reports how many inputs crashed (an exception out of ``Pipeline.scan``), grouped by exception
type and the innermost mailsift frame, with the smallest input of each signature written to
``--out`` for a regression test; how many scans took longer than ``--slow`` seconds; and the
slowest inputs. Seeded: ``--seed`` and ``--count`` name a run exactly. Targets (issue 18):
0 crashes and 0 scans over 2 s in 100,000 inputs.

    python bench/fuzz.py [--count 100000] [--seed 1] [--workers 2] [--out DIR]
"""

from __future__ import annotations

import json
import multiprocessing
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import benchargs  # bench/ is not a package: the script's own folder

from mailsift.config.schema import Settings
from mailsift.core.envelope import Envelope
from mailsift.pipeline.build import build_pipeline
from mailsift.testing.fuzz import mutate, seeds

_state: dict[str, Any] = {}
ENVELOPE = Envelope(mail_from="a@example.org", rcpt_to=("b@example.net",))


def _init() -> None:
    _state["pipeline"] = build_pipeline(Settings.model_validate({"scan": {"offline": True}}))
    _state["seeds"] = seeds()


def _signature(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "mailsift" in f.filename]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(exc).__name__} at {where}"


def _one(index_seed: tuple[int, int]) -> tuple[int, float, int, str | None, bytes | None]:
    index, seed = index_seed
    rng = random.Random(seed * 1_000_003 + index)
    pool = _state["seeds"]
    raw = mutate(pool[index % len(pool)], rng)
    started = time.perf_counter()
    try:
        _state["pipeline"].scan(raw, ENVELOPE)
    except Exception as exc:
        return index, time.perf_counter() - started, len(raw), _signature(exc), raw
    elapsed = time.perf_counter() - started
    return index, elapsed, len(raw), None, raw if elapsed > 2.0 else None


def main() -> int:
    ap = benchargs.bench_parser(__doc__, count=100_000, seed=1, workers=2)
    ap.add_argument("--slow", type=float, default=2.0, help="seconds that count as slow")
    ap.add_argument("--top", type=int, default=10, help="how many of the slowest to list")
    ap.add_argument("--out", type=Path, help="write crashing and slow inputs here")
    args = ap.parse_args()
    started = time.perf_counter()
    crashes: Counter[str] = Counter()
    smallest: dict[str, bytes] = {}
    slowest: list[tuple[float, int, int]] = []
    slow = 0
    jobs = ((i, args.seed) for i in range(args.count))
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.workers, initializer=_init) as pool:
        for done, (index, elapsed, size, sig, raw) in enumerate(
                pool.imap_unordered(_one, jobs, chunksize=64), 1):
            if sig is not None and raw is not None:
                crashes[sig] += 1
                if sig not in smallest or len(raw) < len(smallest[sig]):
                    smallest[sig] = raw
            if elapsed > args.slow:
                slow += 1
                if args.out is not None and raw is not None:
                    args.out.mkdir(parents=True, exist_ok=True)
                    (args.out / f"slow-{index}.eml").write_bytes(raw)
            slowest.append((elapsed, index, size))
            if len(slowest) > 4 * args.top:
                slowest = sorted(slowest, reverse=True)[:args.top]
            if done % 10_000 == 0:
                print(f"  {done} inputs, {sum(crashes.values())} crashes, {slow} slow, "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for n, (_sig, raw) in enumerate(sorted(smallest.items()), 1):
            (args.out / f"crash{n}.eml").write_bytes(raw)
    report = {
        "inputs": args.count, "seed": args.seed, "workers": args.workers,
        "seconds": round(time.perf_counter() - started, 1),
        "crashes": sum(crashes.values()), "signatures": dict(crashes),
        f"over_{args.slow:g}s": slow,
        "slowest": [{"index": i, "seconds": round(t, 3), "bytes": s}
                    for t, i, s in sorted(slowest, reverse=True)[:args.top]],
    }
    print(json.dumps(report, indent=2))
    return 1 if crashes or slow else 0


if __name__ == "__main__":
    sys.exit(main())
