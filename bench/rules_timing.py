"""Time rules evaluation alone on the benchmark mix (parsing excluded).

    .venv/bin/python bench/rules_timing.py [MBOX] [--repeat N]

Prints mean, p50 and p99 of ``RuleSet.evaluate`` per message.
"""

from __future__ import annotations

import argparse
import time

from mailsift.parsing import parse_message
from mailsift.parsing.sources import iter_messages
from mailsift.rules import BUILTIN_PACK, RuleSet, load_pack


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mbox", nargs="?", default="/work/shared/bench/mix-1000.mbox.gz")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-body-chars", type=int, default=128 * 1024)
    args = ap.parse_args()
    ruleset = RuleSet([load_pack(BUILTIN_PACK)], max_body_chars=args.max_body_chars)
    messages = [parse_message(raw) for _id, raw in iter_messages([args.mbox])]
    ruleset.evaluate(messages[0])  # warm caches (public suffix list)
    samples: list[float] = []
    cpu_start = time.process_time()
    for _ in range(args.repeat):
        for msg in messages:
            start = time.perf_counter()
            ruleset.evaluate(msg)
            samples.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu_start
    samples.sort()
    n = len(samples)
    print(f"{len(messages)} messages x {args.repeat}: mean {1000 * sum(samples) / n:.3f} ms, "
          f"p50 {1000 * samples[n // 2]:.3f} ms, p99 {1000 * samples[int(n * 0.99)]:.3f} ms; "
          f"CPU time {1000 * cpu / n:.3f} ms/message (less sensitive to a busy machine)")


if __name__ == "__main__":
    main()
