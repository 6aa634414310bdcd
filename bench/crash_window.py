"""The crash window after relay, measured (issue 18.12).

A copy is relayed twice after a kill -9 only if mailsift dies between the moment the next hop
commits the message (and sends its 250) and the moment mailsift appends the ``ref<TAB>rcpt``
line to ``relayed.journal``. This measures that gap per message under load: the next hop (a
minimal asyncio SMTP sink in its own process, standing in for Postfix) notes the wall-clock time
just before it writes each 250, and the gateway (run in this process) notes the time of each
journal write; the difference is the window for that message.

    python bench/crash_window.py [--messages 2000] [--concurrency 24] [--workers 2]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import benchargs  # noqa: E402
import smtp_bench  # noqa: E402  (bench/ is not a package)

from mailsift.config.schema import Settings  # noqa: E402
from mailsift.delivery.journal import RelayJournal  # noqa: E402
from mailsift.testing.gateway import RunningGateway  # noqa: E402
from mailsift.testing.sink import free_port  # noqa: E402

# smtp_bench's lean sink, noting "ref time" just before each 250 (the next hop's commit point)
TIMED_SINK = smtp_bench.LEAN_SINK.replace(
    "                self.buf, self.data = self.buf[end + 3:], False\n"
    "                self.t.write(b\"250 2.0.0 Ok: queued\\r\\n\")",
    "                msg, self.buf, self.data = self.buf[:end], self.buf[end + 3:], False\n"
    "                ref = msg.split(b\"X-Mailsift-Ref: \", 1)[-1].split(b\"\\r\\n\", 1)[0]\n"
    "                LOG.write(ref.decode() + \" \" + repr(time.time()) + \"\\n\")\n"
    "                self.t.write(b\"250 2.0.0 Ok: queued\\r\\n\")",
).replace("import asyncio, sys", "import asyncio, sys, time\nLOG = open(sys.argv[2], 'a', "
          "buffering=1)")


def main() -> int:
    ap = benchargs.bench_parser(__doc__, messages=2000, concurrency=24, workers=2)
    ap.add_argument("--mix", type=Path, default=smtp_bench.MIX)
    args = ap.parse_args()
    assert "LOG.write" in TIMED_SINK, "smtp_bench's sink changed: update TIMED_SINK"
    marks: dict[str, float] = {}
    real_mark = RelayJournal.mark

    def timed_mark(self: RelayJournal, ref: str, recipients: object) -> None:
        real_mark(self, ref, recipients)  # type: ignore[arg-type]
        marks[ref] = time.time()

    RelayJournal.mark = timed_mark  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        sink_port, log = free_port(), Path(tmp) / "sink.log"
        sink = subprocess.Popen([sys.executable, "-c", TIMED_SINK, str(sink_port), str(log)])
        smtp_bench.wait_port(sink_port)
        settings = Settings.model_validate({
            "store": {"data_dir": str(Path(tmp) / "data")},
            "gateway": {"next_hop_port": sink_port, "workers": args.workers},
            "smtp": {"port": 0}, "http": {"enabled": False}, "milter": {"enabled": False},
            "scan": {"offline": True},
        })
        try:
            with RunningGateway(settings) as gw:
                # the senders in their own process, as the sending MTA would be
                sender = (f"import asyncio, sys; sys.path.insert(0, {str(HERE)!r}); "
                          "import smtp_bench; "
                          "from mailsift.parsing.sources import iter_messages; "
                          f"m = [r for _, r in iter_messages([{str(args.mix)!r}])]; "
                          f"print(asyncio.run(smtp_bench.send_all({gw.ports['smtp']}, m, "
                          f"{args.messages}, {args.concurrency}))[1])")
                started = time.perf_counter()
                subprocess.run([sys.executable, "-c", sender], check=True)
                seconds = time.perf_counter() - started
        finally:
            sink.terminate()
            sink.wait(10)
        committed = dict(line.split() for line in log.read_text().splitlines() if " " in line)
    gaps = sorted((marks[ref] - float(at)) * 1000 for ref, at in committed.items()
                  if ref in marks)
    q = statistics.quantiles(gaps, n=100) if len(gaps) > 1 else gaps * 99
    print(json.dumps({
        "messages": args.messages, "concurrency": args.concurrency, "workers": args.workers,
        "relayed": len(gaps), "msg_per_s": round(args.messages / seconds, 1),
        "window_ms": {"p50": round(q[49], 2), "p90": round(q[89], 2), "p99": round(q[98], 2),
                      "max": round(gaps[-1], 2) if gaps else None},
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
