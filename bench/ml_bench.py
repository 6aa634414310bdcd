"""ML benchmark: what the content model costs per message, alone and inside the scan.

1. In-process: parse the 1000-message mix once, then time feature extraction + scoring of the
   shipped model per message (p50/p99/mean), i.e. the ``ml`` detector's own cost.
2. End to end: ``mailsift scan --workers 2 --offline`` over the mix with the ``ml`` detector
   added to the default detectors, against the same command without it (messages/second, wall
   clock including process start), so the scan-speed target is checked with the model on.

Run: ``python bench/ml_bench.py [--mix PATH] [--runs N]``.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_MIX = HERE.parent.parent / "shared" / "bench" / "mix-1000.mbox.gz"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def model_cost(mix: Path) -> dict[str, float]:
    from mailsift.ml.features import extract
    from mailsift.ml.model import load_model, shipped_model_path
    from mailsift.parsing import parse_message
    from mailsift.parsing.sources import iter_mbox

    started = time.perf_counter()
    model = load_model(shipped_model_path())
    load_ms = (time.perf_counter() - started) * 1000
    with gzip.open(mix, "rb") as fh:
        messages = [parse_message(raw) for raw in iter_mbox(fh)]
    costs = []
    for msg in messages:
        t = time.perf_counter()
        model.predict(extract(msg), top=5)
        costs.append((time.perf_counter() - t) * 1000)
    return {"messages": len(messages), "load_ms": load_ms, "mean_ms": statistics.fmean(costs),
            "p50_ms": _percentile(costs, 0.5), "p99_ms": _percentile(costs, 0.99)}


def scan_rate(mix: Path, workers: int, config: Path | None) -> float:
    cmd = [sys.executable, "-m", "mailsift", "scan", str(mix), "--format", "jsonl",
           "--workers", str(workers), "--offline", "--no-progress"]
    if config is not None:
        cmd += ["--config", str(config)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, check=True)
    wall = time.perf_counter() - start
    return sum(1 for line in proc.stdout.splitlines() if line.strip()) / wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mix", type=Path, default=DEFAULT_MIX)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not args.mix.is_file():
        print(f"benchmark mix not found: {args.mix}", file=sys.stderr)
        return 2
    cost = model_cost(args.mix)
    print(f"model alone: {cost['messages']} messages, load {cost['load_ms']:.0f} ms, "
          f"mean {cost['mean_ms']:.3f} ms, p50 {cost['p50_ms']:.3f} ms, "
          f"p99 {cost['p99_ms']:.3f} ms per message")
    from mailsift.config.schema import DetectorSettings

    base = DetectorSettings().enabled
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "mailsift.toml"
        names = ", ".join(f'"{n}"' for n in (*base, "ml"))
        config.write_text(f"[detectors]\nenabled = [{names}]\n", encoding="utf-8")
        for label, cfg in (("without ml", None), ("with ml", config)):
            rates = [scan_rate(args.mix, args.workers, cfg) for _ in range(args.runs)]
            print(f"scan --workers {args.workers} {label}: "
                  f"{statistics.median(rates):.0f} msg/s (median of {args.runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
