"""Memory of a mailsift node at N concurrent SMTP sessions (issue 26; default 200).

Starts ``mailsift serve`` as ``versus_rspamd.py`` does (SMTP content filter, HTTP API and
console, ``--workers`` scan workers, SQLite store, offline) and the lean sink of
``smtp_bench.py`` as next hop, then:

1. idle, after a warm-up of 50 messages;
2. ``--sessions`` SMTP sessions open at once, each sending messages of the benchmark mix one
   after another (``--messages`` in all), sampled every 0.2 s;
3. the same sessions connected and idle (EHLO done, no transaction), held for 3 s.

Reports, for all mailsift processes (the gateway and its scan workers), the sum of RSS (pages
shared between the processes counted in each) and of PSS (shared pages split between them:
what the node really holds), at idle and at the peak of each phase.

    python bench/gateway_memory.py [--sessions 200] [--messages 4000] [--workers 2]
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import benchargs  # noqa: E402
import smtp_bench  # noqa: E402  (bench/ is not a package)
import versus_rspamd  # noqa: E402


def memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes of ``pid`` and its descendants."""
    rss = pss = 0
    for p in versus_rspamd.descendants(pid):
        try:
            text = Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Rss:"):
                rss += int(line.split()[1]) * 1024
            elif line.startswith("Pss:"):
                pss += int(line.split()[1]) * 1024
    return rss, pss


class Sampler:
    """Peak (RSS, PSS) of a process tree, sampled on a thread."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.pid, self.every = pid, every
        self.peak = (0, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = memory(self.pid)
            self.peak = (max(self.peak[0], rss), max(self.peak[1], pss))
            self._stop.wait(self.every)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def hold_idle(port: int, sessions: int, seconds: float, pid: int) -> tuple[int, int]:
    clients = [smtp_bench.LeanClient(port) for _ in range(sessions)]
    await asyncio.gather(*(c.connect() for c in clients))
    with Sampler(pid) as sampler:
        await asyncio.sleep(seconds)
    await asyncio.gather(*(c.quit() for c in clients))
    return sampler.peak


def mib(value: int) -> str:
    return f"{value / 2**20:.0f} MiB"


def main() -> int:
    ap = benchargs.bench_parser(__doc__, sessions=200, messages=4000, workers=2)
    ap.add_argument("--mix", type=Path, default=smtp_bench.MIX)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parent / "src"))
    from mailsift.parsing.sources import iter_messages

    messages = [raw for _, raw in iter_messages([str(args.mix)])]
    load = os.getloadavg()
    print(f"data: {args.mix.name} cycled; mailsift serve with {args.workers} scan workers, "
          f"SQLite store, offline; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}",
          flush=True)
    with versus_rspamd.running_mailsift(args.workers) as ms:
        pid, port = ms["pid"], ms["smtp"]
        asyncio.run(smtp_bench.send_all(port, messages, 50, 4, 0))
        time.sleep(1)
        rss, pss = memory(pid)
        print(f"idle: RSS {mib(rss)}, PSS {mib(pss)} "
              f"({len(versus_rspamd.descendants(pid))} processes)", flush=True)
        with Sampler(pid) as sampler:
            start = time.perf_counter()
            latencies, failures = asyncio.run(smtp_bench.send_all(
                port, messages, args.messages, args.sessions, 50))
            wall = time.perf_counter() - start
        print(f"{args.sessions} sessions sending ({len(latencies)} messages, "
              f"{len(latencies) / wall:.0f} msg/s, failures {failures}): peak RSS "
              f"{mib(sampler.peak[0])}, peak PSS {mib(sampler.peak[1])}", flush=True)
        peak = asyncio.run(hold_idle(port, args.sessions, 3.0, pid))
        print(f"{args.sessions} sessions connected, idle: peak RSS {mib(peak[0])}, "
              f"peak PSS {mib(peak[1])}", flush=True)
        rss, pss = memory(pid)
        print(f"after: RSS {mib(rss)}, PSS {mib(pss)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
