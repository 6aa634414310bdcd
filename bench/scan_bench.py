"""Scan benchmark: `mailsift scan --workers 2` over the fixed 1000-message mix.

Prints messages/second (wall clock of the whole command, process start included), per-message
p50/p99 scan latency (the ``elapsed_ms`` each result reports: parse + detectors + policy), and
how the verdicts fall per label. Run with ``make bench`` or ``python bench/scan_bench.py``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_MIX = HERE.parent.parent / "shared" / "bench" / "mix-1000.mbox.gz"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_once(mix: Path, workers: int, extra: list[str]) -> tuple[float, list[dict[str, object]]]:
    cmd = [sys.executable, "-m", "mailsift", "scan", str(mix), "--format", "jsonl",
           "--workers", str(workers), "--offline", "--no-progress", *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, check=True)
    wall = time.perf_counter() - start
    return wall, [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mix", type=Path, default=DEFAULT_MIX)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("extra", nargs="*", help="extra arguments for mailsift scan")
    args = parser.parse_args()
    if not args.mix.is_file():
        print(f"benchmark mix not found: {args.mix}", file=sys.stderr)
        return 2
    labels_path = args.mix.with_name(args.mix.name.replace(".mbox.gz", ".labels.tsv"))
    labels: dict[str, str] = {}
    if labels_path.is_file():
        with labels_path.open() as fh:
            labels = {row["id"]: row["label"] for row in csv.DictReader(fh, delimiter="\t")}

    walls = []
    results: list[dict[str, object]] = []
    for _ in range(args.runs):
        wall, results = run_once(args.mix, args.workers, args.extra)
        walls.append(wall)
    n = len(results)
    wall = statistics.median(walls)
    # Start-up (imports, rule compilation, model load, forking the workers) measured on a
    # one-message mbox, to separate it from the steady scanning rate.
    one = Path(tempfile.mkdtemp()) / "one.mbox"
    with gzip.open(args.mix, "rb") as fh:
        head = fh.read(1 << 20)
    second = head.find(b"\nFrom ", 1)
    one.write_bytes(head[: second + 1] if second > 0 else head)
    startup = statistics.median(run_once(one, args.workers, args.extra)[0]
                                for _ in range(args.runs))
    lat = [float(r["elapsed_ms"]) for r in results]  # type: ignore[arg-type]
    print(f"data: {args.mix} ({n} messages), workers={args.workers}, runs={args.runs} (median)")
    print(f"throughput: {n / wall:.0f} messages/s  (wall {wall:.2f} s incl. start-up; "
          f"runs: {', '.join(f'{w:.2f}' for w in walls)})")
    print(f"start-up: {startup:.2f} s (one-message run); steady scanning: "
          f"{n / max(wall - startup, 1e-9):.0f} messages/s")
    print(f"per-message scan latency: p50 {_percentile(lat, 0.5):.2f} ms  "
          f"p99 {_percentile(lat, 0.99):.2f} ms  max {max(lat):.1f} ms")
    if labels:
        table: dict[str, Counter[str]] = {}
        for r in results:
            label = labels.get(str(r["id"]), "?")
            table.setdefault(label, Counter())[str(r["action"])] += 1
        print("actions by label:")
        for label, counts in sorted(table.items()):
            total = sum(counts.values())
            cells = ", ".join(f"{a} {c} ({100 * c / total:.1f}%)" for a, c in counts.most_common())
            print(f"  {label:<6} n={total:<4} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
