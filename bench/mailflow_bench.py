"""What 100 mail-flow rules add per message (target: <= 0.2 ms p50).

    .venv/bin/python bench/mailflow_bench.py [MBOX] [--messages N] [--rules N] [--repeat N]
                                             [--shadow]

Scans N messages of the benchmark mix once with the real pipeline (offline), then times the
gateway's flow step (``FlowStep.before`` + ``FlowStep.after``: direction, evaluation, decisions,
explanation) per message with the generated rules and with none, and prints p50/p99 of both and
of the difference. The rules mix every condition kind; a few match some messages, most match
none (as real rule sets do), and all are after-detection rules that only add headers.
``--shadow`` also runs a staged version of the same rules in shadow beside them (what a
``mailflow:rules`` version in shadow or canary adds: its decision is computed and recorded as a
shadow verdict for every message).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from typing import Any

from mailsift.config.mailflow import DirectionSettings, MailflowSettings
from mailsift.config.schema import Settings
from mailsift.core.envelope import Connection, Envelope
from mailsift.core.findings import ArtifactState
from mailsift.mailflow.engine import RuleSet
from mailsift.mailflow.step import FlowStep
from mailsift.mailflow.versions import FlowSet
from mailsift.parsing.sources import iter_messages
from mailsift.pipeline.build import ScanOptions, build_pipeline

CONDITIONS: list[dict[str, Any]] = [
    {"sender": ["@example{i}.com", "ceo{i}@customer.test"]},
    {"recipient": ["group:finance"], "direction": "inbound"},
    {"header_contains": {"X-Mailer": "mailer-{i}"}},
    {"header_regex": {"List-Id": r"^<list{i}\."}},
    {"subject_words": ["invoice {i}", "urgent{i}"]},
    {"body_words": ["wire transfer {i}"]},
    {"attachment_extension": ["iso", "img", "x{i}"]},
    {"size_over": 40_000_000},
    {"category": ["phish"], "score_at_least": 50},
    {"client_ip": ["203.0.{i}.0/24"]},
    {"body_words": ["unsubscribe"], "direction": "inbound", "size_over": 1000},
]


def _fill(value: Any, i: int) -> Any:
    if isinstance(value, str):
        return value.replace("{i}", str(i % 250))
    if isinstance(value, list):
        return [_fill(v, i) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, i) for k, v in value.items()}
    return value


def make_rules(n: int) -> MailflowSettings:
    rules = []
    for i, cond in zip(range(n), itertools.cycle(CONDITIONS), strict=False):
        rules.append({"name": f"rule-{i}", "priority": i, "if": _fill(cond, i),
                      "then": {"add_header": {f"X-Rule-{i}": "hit"}}})
    return MailflowSettings.model_validate(
        {"rules": rules, "groups": {"finance": ["cfo@customer.test", "@pay.customer.test"]}})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mbox", nargs="?", default="/work/shared/bench/mix-1000.mbox.gz")
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--rules", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--shadow", action="store_true", help="a staged version beside the rules")
    args = ap.parse_args()
    direction = DirectionSettings(accepted_domains=("customer.test",),
                                  internal_networks=("10.0.0.0/8",))
    pipeline = build_pipeline(Settings.model_validate({"scan": {"offline": True}}),
                              ScanOptions(offline=True))
    envelope = Envelope(mail_from="sender@example.org", rcpt_to=("bob@customer.test",),
                        connection=Connection(client_ip="198.51.100.7"))
    scanned = []
    for _id, raw in itertools.islice(iter_messages([args.mbox]), args.messages):
        scanned.append((raw, pipeline.scan(raw, envelope)))
    rules = make_rules(args.rules)
    trials = (FlowSet(RuleSet(rules), "staged", ArtifactState.SHADOW),) if args.shadow else ()
    steps = {"none": FlowStep(direction, MailflowSettings()),
             "rules": FlowStep(direction, rules, sets=(FlowSet(RuleSet(rules)), trials))}
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(args.repeat):
        for raw, result in scanned:
            for name, step in steps.items():
                t0 = time.perf_counter()
                ctx = step.before(raw, envelope)
                step.after(ctx, result, ctx.raw)
                times[name].append((time.perf_counter() - t0) * 1000)
    added = [r - n for r, n in zip(times["rules"], times["none"], strict=True)]
    print(f"{len(scanned)} messages x {args.repeat}, {args.rules} rules"
          f"{' + the same in shadow' if args.shadow else ''}, from {args.mbox}")
    for name, values in (("no rules", times["none"]), (f"{args.rules} rules", times["rules"]),
                         ("added", added)):
        q = statistics.quantiles(values, n=100)
        print(f"{name:>10}: p50 {statistics.median(values):.4f} ms  p99 {q[98]:.4f} ms  "
              f"mean {statistics.fmean(values):.4f} ms")
    hits = sum(1 for _raw, r in scanned
               for f in steps["rules"].after(steps["rules"].before(_raw, envelope), r, _raw)[0]
               .findings if f.detector == "mailflow")
    print(f"rule hits: {hits} over {len(scanned)} messages")


if __name__ == "__main__":
    main()
