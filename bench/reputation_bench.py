"""DNS-list cost benchmark: what Spamhaus-style lists add to a scan.

A local DNS server (``python -m mailsift.testing.dns``, in its own process) answers every
question 5 ms late (``--delay``).
Each message has 10 link domains and a client IP of its own, plus its own From domain, so every
question is a cache miss (a cold resolver per run). The same messages are scanned in process by
the default pipeline, online, without lists and with one IP list (ZEN-like) and one domain list
(DBL-like), whose questions go to a second server instance (``[reputation] nameservers``;
``--one-server`` to share one): each message by both back to back, alternating which goes
first, so load on a
shared machine hits both alike; fresh pipelines (cold caches) each of ``--rounds``, then one
pass with every cache warm. Authentication asks the same slow server in both. Prints the
per-message p50/p99 of the scan time each result reports (``elapsed_ms``), process CPU per
scan (DNS threads included) and the difference.
Run: ``python bench/reputation_bench.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mailsift.config.schema import Settings
from mailsift.core.envelope import Connection, Envelope
from mailsift.detectors.reputation import ReputationDetector
from mailsift.parsing import parse_message
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.testing.messages import make_message

LISTS = {
    "ip_lists": [{"name": "ZEN", "zone": "zen.bench", "codes": {"127.0.0.2": 6.0}}],
    "domain_lists": [{"name": "DBL", "zone": "dbl.bench", "codes": {"127.0.1.2": 6.0}}],
}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _messages(n: int) -> list[tuple[bytes, Envelope]]:
    out = []
    for i in range(n):
        links = "".join(f'<p><a href="https://www.shop{i}-{k}.example/offer?id={k}">offer {k}'
                        f"</a></p>" for k in range(10))
        raw = make_message(from_=f"Shop {i} <news@sender{i}.example>",
                           subject=f"Offers of the week {i}", text=None,
                           html=f"<html><body><p>Hello,</p>{links}</body></html>",
                           message_id=f"<bench-{i}@sender{i}.example>")
        ip = f"198.51.{100 + i // 250}.{i % 250 + 1}"
        env = Envelope(mail_from=f"bounce@sender{i}.example", rcpt_to=("bob@example.net",),
                       connection=Connection(client_ip=ip, helo=f"mx.sender{i}.example"))
        out.append((raw, env))
    return out


@contextlib.contextmanager
def _dns_process(zones: dict[str, Any], delay: float) -> Iterator[int]:
    """``python -m mailsift.testing.dns`` in a child process, so its CPU is not the scan's."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "zones.toml"
        path.write_text("".join(f'["{name}"]\nA = {json.dumps(data["A"])}\n'
                                for name, data in zones.items()))
        proc = subprocess.Popen([sys.executable, "-m", "mailsift.testing.dns", str(path),
                                 "--delay", str(delay)], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            yield int(proc.stdout.readline())
        finally:
            proc.terminate()
            proc.wait(10)


def _pipelines(settings: list[Settings]) -> list[Any]:
    out = []
    for one in settings:
        pipeline = build_pipeline(one, ScanOptions(offline=False))
        out.append(pipeline)
    return out


def _paired(pipelines: list[Any], messages: list[tuple[bytes, Envelope]]
            ) -> tuple[list[list[float]], list[list[float]], list[float]]:
    """Scan every message with each pipeline back to back (alternating which goes first), so
    load on the shared machine hits both alike. Returns elapsed ms and CPU ms (whole process,
    the DNS threads included) per pipeline, and the reputation stage's wait per message."""
    elapsed: list[list[float]] = [[] for _ in pipelines]
    cpu: list[list[float]] = [[] for _ in pipelines]
    wait: list[float] = []
    for n, (raw, env) in enumerate(messages):
        order = list(range(len(pipelines)))
        if n % 2:
            order.reverse()
        for k in order:
            c0 = time.process_time()
            result = pipelines[k].scan(raw, env)
            cpu[k].append((time.process_time() - c0) * 1000)
            elapsed[k].append(result.elapsed_ms)
            if "reputation" in result.detector_ms and pipelines[k] is pipelines[-1]:
                wait.append(result.detector_ms["reputation"])
    return elapsed, cpu, wait


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one-server", action="store_true",
                        help="lists and authentication ask the same test server (its single "
                        "Python answering loop then queues authentication behind the lists)")
    parser.add_argument("--delay", type=float, default=0.005, help="DNS answer delay, seconds")
    args = parser.parse_args()
    messages = _messages(args.messages + 1)
    zones: dict[str, Any] = {"listed.example.dbl.bench": {"A": ["127.0.1.2"]}}
    with _dns_process(zones, args.delay) as port, _dns_process(zones, args.delay) as list_port:
        base: dict[str, Any] = {"dns": {"nameservers": ["127.0.0.1"], "port": port}}
        lists: dict[str, Any] = dict(LISTS)
        if not args.one_server:
            lists.update(nameservers=["127.0.0.1"], port=list_port)
        without = Settings.model_validate(base)
        with_lists = Settings.model_validate({**base, "reputation": lists})
        cold_ms: list[list[float]] = [[], []]
        cold_cpu: list[list[float]] = [[], []]
        waits: list[float] = []
        for _ in range(args.rounds):  # fresh pipelines (cold caches) every round
            pipelines = _pipelines([without, with_lists])
            for p in pipelines:
                p.scan(*messages[0])  # warm-up: model and public suffix list loaded
            elapsed, cpu, wait = _paired(pipelines, messages[1:])
            for k in (0, 1):
                cold_ms[k] += elapsed[k]
                cold_cpu[k] += cpu[k]
            waits += wait
        warm_ms, warm_cpu, _ = _paired(pipelines, messages[1:])  # every cache warm now
    n = len(messages) - 1
    print(f"{n} messages x {args.rounds} rounds, 10 link domains + 1 client IP + 2 sender "
          f"domains each, DNS answers {args.delay * 1000:g} ms late; each message scanned "
          "without and with lists back to back")
    rep = ReputationDetector(with_lists.reputation, None)
    asked = [len(list(rep.queries(parse_message(raw), env))) for raw, env in messages[1:]]
    where = ("the same server as authentication" if args.one_server else
             "a second server ([reputation] nameservers)")
    print(f"list questions per message: {statistics.mean(asked):.1f}, asked of {where}; the "
          "test DNS servers run in their own processes")
    for name, ms, cpu_ms in (("cold", cold_ms, cold_cpu), ("warm", warm_ms, warm_cpu)):
        for k, label in ((0, "without lists"), (1, "with lists")):
            print(f"  {name}, {label:<14} p50 {statistics.median(ms[k]):7.2f} ms   "
                  f"p99 {_percentile(ms[k], 0.99):7.2f} ms   CPU p50 "
                  f"{statistics.median(cpu_ms[k]):6.2f} ms")
        diff = [b - a for a, b in zip(ms[0], ms[1], strict=True)]
        print(f"  {name}: added p50 {statistics.median(ms[1]) - statistics.median(ms[0]):+.2f} "
              f"ms (median of per-message differences {statistics.median(diff):+.2f} ms)")
    print(f"reputation stage wait p50 {statistics.median(waits):.2f} ms, "
          f"p99 {_percentile(waits, 0.99):.2f} ms (questions are sent when the scan starts; "
          "this is what was still outstanding when the stage came)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
