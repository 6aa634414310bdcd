"""Per-rule hit rates of the rule packs on the shared corpora (calibration, not a test).

    .venv/bin/python bench/rule_hits.py [--limit N] [--corpus DIR] [--pack PATH ...] [--markdown]

For each corpus source (``<corpus>/{ham,spam,phish}/*.mbox.gz``) it parses up to ``--limit``
messages, evaluates the rules and prints, per rule, the percentage of messages it hit. It also
prints, per source, the share of messages whose rules-only family scores reach the default
thresholds (phish >= 6, spam >= 6, spam >= 15, malware >= 1), counting active rules only, and
the mean rules evaluation time per message. Quarantine-capable rules hitting >= 0.5 % of a ham
source are flagged with ``!``.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from collections import Counter, defaultdict

from mailsift.config.schema import Thresholds
from mailsift.core.findings import ArtifactState
from mailsift.parsing import parse_message
from mailsift.parsing.sources import iter_messages
from mailsift.rules import BUILTIN_PACK, RuleSet, load_pack

LABELS = ("ham", "spam", "phish")


def quarantining(category: str | None, weight: float, th: Thresholds) -> bool:
    return category in ("malware", "phish") or (category == "spam" and weight >= th.spam_high)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="/work/shared/corpus")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--pack", action="append", default=[])
    ap.add_argument("--no-builtin", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="print tables as Markdown")
    ap.add_argument("--examples", metavar="RULE", help="print source:index of ham hits of RULE")
    args = ap.parse_args()
    packs = [] if args.no_builtin else [load_pack(BUILTIN_PACK)]
    packs += [load_pack(p) for p in args.pack]
    ruleset = RuleSet(packs)
    th = Thresholds()
    hits: dict[str, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    reach: dict[str, Counter[str]] = defaultdict(Counter)
    elapsed: Counter[str] = Counter()
    sources: list[tuple[str, str]] = []
    for label in LABELS:
        for path in sorted(glob.glob(os.path.join(args.corpus, label, "*.mbox.gz"))):
            source = os.path.basename(path).removesuffix(".mbox.gz")
            sources.append((label, source))
            for index, (_id, raw) in enumerate(iter_messages([path])):
                if index >= args.limit:
                    break
                msg = parse_message(raw)
                start = time.perf_counter()
                found = ruleset.evaluate(msg)
                elapsed[source] += time.perf_counter() - start
                totals[source] += 1
                scores: Counter[str] = Counter()
                for hit in found:
                    hits[source][hit.rule.id] += 1
                    if args.examples == hit.rule.id and label == "ham":
                        print(f"{source}:{index} {hit.evidence}", file=sys.stderr)
                    if hit.rule.category and hit.rule.state is ArtifactState.ACTIVE:
                        scores[hit.rule.category] += hit.rule.weight
                if scores["phish"] >= th.phish:
                    reach[source]["phish>=6"] += 1
                if scores["spam"] >= th.spam:
                    reach[source]["spam>=6"] += 1
                if scores["spam"] >= th.spam_high:
                    reach[source]["spam>=15"] += 1
                if scores["malware"] >= th.malware:
                    reach[source]["malware"] += 1
    _print(ruleset, sources, hits, totals, reach, elapsed, th, args.markdown)
    return 0


def _pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:.1f}" if total else "-"


def _print(ruleset: RuleSet, sources: list[tuple[str, str]], hits: dict[str, Counter[str]],
           totals: Counter[str], reach: dict[str, Counter[str]], elapsed: Counter[str],
           th: Thresholds, markdown: bool) -> None:
    groups = {label: [s for lab, s in sources if lab == label] for label in LABELS}
    sep = " | " if markdown else "  "
    head = ["rule", "family", "w", "ham max% (source)", "spam %", "phish %"]
    print(("| " if markdown else "") + sep.join(head) + (" |" if markdown else ""))
    if markdown:
        print("|" + "---|" * len(head))
    for rule_id in sorted(ruleset.codes):
        meta = ruleset.rules[rule_id]
        ham_rates = [(100.0 * hits[s][rule_id] / totals[s], s) for s in groups["ham"] if totals[s]]
        worst = max(ham_rates, default=(0.0, "-"))
        flag = "!" if quarantining(meta.category, meta.weight, th) and worst[0] >= 0.5 else ""
        cols = [
            rule_id + flag, meta.category or "-", f"{meta.weight:g}",
            f"{worst[0]:.2f} ({worst[1]})" if worst[0] else "0",
        ]
        for label in ("spam", "phish"):
            n = sum(hits[s][rule_id] for s in groups[label])
            cols.append(_pct(n, sum(totals[s] for s in groups[label])))
        print(("| " if markdown else "") + sep.join(cols) + (" |" if markdown else ""))
    print()
    head = ["source", "label", "n", "phish>=6 %", "spam>=6 %", "spam>=15 %", "malware %", "ms/msg"]
    print(("| " if markdown else "") + sep.join(head) + (" |" if markdown else ""))
    if markdown:
        print("|" + "---|" * len(head))
    for label, source in sources:
        n = totals[source]
        cols = [source, label, str(n)] + [
            _pct(reach[source][k], n) for k in ("phish>=6", "spam>=6", "spam>=15", "malware")
        ] + [f"{1000 * elapsed[source] / n:.3f}" if n else "-"]
        print(("| " if markdown else "") + sep.join(cols) + (" |" if markdown else ""))


if __name__ == "__main__":
    sys.exit(main())
