"""DNS-list cost benchmark: what Spamhaus-style lists add to a scan.

A local DNS server (``mailsift.testing.dns``) answers every question 5 ms late (``--delay``).
Each message has 10 link domains and a client IP of its own, plus its own From domain, so every
question is a cache miss (a cold resolver per run). The same messages are scanned in process by
the default pipeline, online, without lists and with one IP list (ZEN-like) and one domain list
(DBL-like), alternating for ``--rounds`` (machine load hits both alike); authentication asks the
same slow server in both. Then both again with every cache warm (second pass). Prints the
per-message p50/p99 of the scan time each result reports (``elapsed_ms``) and the difference.
Run: ``python bench/reputation_bench.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Any

from mailsift.app import ScanOptions, build_pipeline
from mailsift.config.schema import Settings
from mailsift.core.envelope import Connection, Envelope
from mailsift.testing.dns import DnsServer
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


def _run(settings: Settings, messages: list[tuple[bytes, Envelope]], *, passes: int = 1
         ) -> tuple[list[float], list[float]]:
    pipeline = build_pipeline(settings, ScanOptions(offline=False))
    pipeline.scan(*messages[0])  # warm-up: model and public suffix list loaded
    elapsed: list[float] = []
    reputation: list[float] = []
    for _ in range(passes):
        elapsed.clear()
        reputation.clear()
        for raw, env in messages[1:]:
            result = pipeline.scan(raw, env)
            elapsed.append(result.elapsed_ms)
            reputation.append(result.detector_ms.get("reputation", 0.0))
    return elapsed, reputation


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.005, help="DNS answer delay, seconds")
    args = parser.parse_args()
    messages = _messages(args.messages + 1)
    zones: dict[str, Any] = {"listed.example.dbl.bench": {"A": ["127.0.1.2"]}}
    plain: list[float] = []
    listed: list[float] = []
    rep_ms: list[float] = []
    warm_plain: list[float] = []
    warm_listed: list[float] = []
    list_queries = 0
    with DnsServer(zones, delay=args.delay) as dns:
        base: dict[str, Any] = {"dns": {"nameservers": ["127.0.0.1"], "port": dns.port}}
        without = Settings.model_validate(base)
        with_lists = Settings.model_validate({**base, "reputation": LISTS})
        # Alternate the two configurations so machine load (shared cores) hits both alike.
        for _ in range(args.rounds):
            plain += _run(without, messages)[0]
            before = len(dns.queries)
            got, rep = _run(with_lists, messages)
            listed += got
            rep_ms += rep
            list_queries += sum(1 for q in dns.queries[before:] if q.name.endswith(".bench"))
        warm_plain = _run(without, messages, passes=2)[0]
        warm_listed = _run(with_lists, messages, passes=2)[0]
    n = len(plain)
    print(f"{args.messages} messages x {args.rounds} rounds, 10 link domains + 1 client IP + "
          f"sender domains each, DNS answers {args.delay * 1000:g} ms late")
    print(f"list queries sent (cold runs): {list_queries / n:.1f} per message")
    rows = (("cold, without lists", plain), ("cold, with lists", listed),
            ("warm, without lists", warm_plain), ("warm, with lists", warm_listed))
    for name, values in rows:
        print(f"  {name:<20} p50 {statistics.median(values):7.2f} ms   "
              f"p99 {_percentile(values, 0.99):7.2f} ms")
    print(f"added p50: cold {statistics.median(listed) - statistics.median(plain):+.2f} ms, "
          f"warm {statistics.median(warm_listed) - statistics.median(warm_plain):+.2f} ms")
    print(f"reputation stage wait p50 {statistics.median(rep_ms):.2f} ms, "
          f"p99 {_percentile(rep_ms, 0.99):.2f} ms (questions are sent when the scan starts; "
          "this is what was still outstanding when the stage came)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
