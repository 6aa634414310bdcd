"""How often each content/reputation detector code fires per corpus source, and what it costs.

For every ``*.mbox.gz`` under the corpus (``ham/``, ``spam/``, ``phish/``) an evenly spread sample
of at most ``--sample`` messages is parsed and run through the detectors (default settings, a
fresh in-memory sender history, no feeds), without authentication (offline). Printed per code and
source: the percentage of messages where the code fired, and in brackets where its weight alone
reaches its family's category threshold (could change the category by itself). Codes are
marked ``!`` when a ham source exceeds 0.5% with a category-changing weight.

Then the mean cost (µs per message, per detector) over the benchmark mix.

    .venv/bin/python bench/detector_hits.py [--sample 1500] [--markdown]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from mailsift.config.schema import Settings
from mailsift.core.context import ScanContext
from mailsift.core.envelope import Envelope
from mailsift.detectors.base import Detector, Services
from mailsift.detectors.registry import build_detectors
from mailsift.history import MemoryHistory
from mailsift.parsing import parse_message
from mailsift.parsing.sources import iter_mbox

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
DETECTORS = ("links", "attachments", "impersonation", "bulk", "history")


def _count(path: Path) -> int:
    with gzip.open(path, "rb") as fh:
        return sum(1 for line in fh if line.startswith(b"From "))


def _sample(path: Path, limit: int) -> list[bytes]:
    total = _count(path)
    frac = min(1.0, limit / max(total, 1))
    out = []
    with gzip.open(path, "rb") as fh:
        for i, raw in enumerate(iter_mbox(fh)):
            # the corpus's own rule: keep the i-th message iff floor((i+1)f) > floor(i f)
            if int((i + 1) * frac) > int(i * frac):
                out.append(raw)
    return out


def _detectors(names: tuple[str, ...]) -> list[Detector]:
    settings = Settings(detectors={"enabled": names})
    # A fresh, therefore cold, in-memory sender history, as the README's numbers say.
    return build_detectors(settings, Services(history=MemoryHistory()))


def _thresholds() -> dict[str, float]:
    th = Settings().policy.thresholds
    return {"malware": th.malware, "phish": th.phish, "spam": th.spam, "bulk": th.bulk,
            "impersonation_user": th.impersonation_user,
            "impersonation_domain": th.impersonation_domain, "spoof": th.spoof}


def hits(corpus: Path, sample: int, names: tuple[str, ...]
         ) -> tuple[dict[str, dict[str, tuple[int, int]]], dict[str, int],
                    dict[str, Counter[str]]]:
    dets = _detectors(names)
    limit = _thresholds()
    table: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    sizes: dict[str, int] = {}
    reached: dict[str, Counter[str]] = {}
    for path in sorted(corpus.glob("*/*.mbox.gz")):
        source = f"{path.parent.name}/{path.name.removesuffix('.mbox.gz')}"
        msgs = _sample(path, sample)
        sizes[source] = len(msgs)
        fired: Counter[str] = Counter()
        decisive: Counter[str] = Counter()
        families: Counter[str] = Counter()
        for raw in msgs:
            ctx = ScanContext(parse_message(raw), Envelope(), None, True, time.time())
            score: dict[str, float] = defaultdict(float)
            for det in dets:
                for f in det.run(ctx):
                    fired[f.code] += 1
                    if f.category:
                        score[f.category] += f.weight
                    if f.category and f.weight >= limit.get(f.category, float("inf")):
                        decisive[f.code] += 1
            # message level: the families these detectors *together* push over a threshold
            for family, total in score.items():
                if total >= limit.get(family, float("inf")):
                    families[family] += 1
        reached[source] = families
        for code in fired:
            table[code][source] = (fired[code], decisive[code])
        print(f"  {source}: {len(msgs)} messages", file=sys.stderr)
    return table, sizes, reached


def timing(mix: Path, names: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """Mean µs per message and detector: first pass (cold caches) and second pass (warm, as in
    a long-running worker)."""
    dets = _detectors(names)
    with gzip.open(mix, "rb") as fh:
        ctxs = [ScanContext(parse_message(raw), Envelope(), None, True, time.time())
                for raw in iter_mbox(fh)]
    out = {}
    for det in dets:
        passes = []
        for _ in range(2):
            start = time.perf_counter()
            for ctx in ctxs:
                det.run(ctx)
            passes.append((time.perf_counter() - start) / len(ctxs) * 1e6)
        out[det.name] = (passes[0], passes[1])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=SHARED / "corpus")
    parser.add_argument("--mix", type=Path, default=SHARED / "bench" / "mix-1000.mbox.gz")
    parser.add_argument("--sample", type=int, default=1500)
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args()
    names = tuple(n.strip() for n in args.detectors.split(",") if n.strip())
    table, sizes, reached = hits(args.corpus, args.sample, names)
    sources = list(sizes)
    print("| source | n | " + " | ".join(sorted(table)) + " |")
    print("|---|---|" + "---|" * len(table))
    flagged = set()
    for source in sources:
        cells = []
        for code in sorted(table):
            fired, decisive = table[code].get(source, (0, 0))
            pct = 100.0 * fired / max(sizes[source], 1)
            dpct = 100.0 * decisive / max(sizes[source], 1)
            mark = ""
            if source.startswith("ham/") and dpct > 0.5:
                mark = " !"
                flagged.add(code)
            cells.append(f"{pct:.1f}" + (f" ({dpct:.1f})" if decisive else "") + mark
                         if fired else "·")
        print(f"| {source} | {sizes[source]} | " + " | ".join(cells) + " |")
    if flagged:
        print(f"\ncategory-changing on >0.5% of a ham source: {', '.join(sorted(flagged))}")
    fams = sorted({f for c in reached.values() for f in c})
    print("\nMessages whose family score from these detectors together reaches a category "
          "threshold (%):\n")
    print("| source | " + " | ".join(fams) + " |\n|---|" + "---|" * len(fams))
    for source in sources:
        n = max(sizes[source], 1)
        print(f"| {source} | " + " | ".join(
            f"{100.0 * reached[source][f] / n:.1f}" if reached[source][f] else "·"
            for f in fams) + " |")
    if not args.no_timing and args.mix.is_file():
        print("\n| detector | mean µs/message (cold) | (warm) |\n|---|---|---|")
        total = [0.0, 0.0]
        for name, (cold, warm) in timing(args.mix, names).items():
            print(f"| {name} | {cold:.0f} | {warm:.0f} |")
            total = [total[0] + cold, total[1] + warm]
        print(f"| **all** | {total[0]:.0f} | {total[1]:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
