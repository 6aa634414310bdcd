"""Adapter parity on the fixed 1000-message mix: the milter and the SMTP content filter must
give identical verdicts, trace rows and circuit-breaker counts (issue 17).

Runs every message of ``../shared/bench/mix-1000.mbox.gz`` through ``Gateway.process`` (relaying
to a local SMTP sink) and through ``MilterService.decide``, each on its own fresh store, and
prints the differences (exit 1 when there are any). ``python bench/adapter_parity.py [--limit N]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from mailsift.testing.parity import run_adapter
from mailsift.testing.traffic import bench_mix

HERE = Path(__file__).resolve().parent
DEFAULT_MIX = HERE.parent.parent / "shared" / "bench" / "mix-1000.mbox.gz"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mix", type=Path, default=DEFAULT_MIX)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    messages = [raw for _, raw in bench_mix(args.mix, args.limit)]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        smtp_rows, smtp_counts = run_adapter("smtp", Path(tmp) / "smtp", messages)
        milter_rows, milter_counts = run_adapter("milter", Path(tmp) / "milter", messages)
        seconds = time.perf_counter() - started
    differing = [(a, b) for a, b in zip(smtp_rows, milter_rows, strict=False) if a != b]
    count_diff = {k: (smtp_counts.get(k), milter_counts.get(k))
                  for k in set(smtp_counts) | set(milter_counts)
                  if smtp_counts.get(k) != milter_counts.get(k)}
    print(f"{len(messages)} messages through both adapters in {seconds:.1f} s")
    print(f"trace rows: smtp {len(smtp_rows)}, milter {len(milter_rows)}, "
          f"differing {len(differing) + abs(len(smtp_rows) - len(milter_rows))}")
    print(f"breaker subjects: {len(smtp_counts)}; differing counts: {len(count_diff)}")
    for a, b in differing[:20]:
        print(f"  smtp   {a}\n  milter {b}")
    for k, v in sorted(count_diff.items())[:20]:
        print(f"  {k}: smtp {v[0]} milter {v[1]}")
    same = not differing and len(smtp_rows) == len(milter_rows) and not count_diff
    print("identical" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
