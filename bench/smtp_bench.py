"""End-to-end SMTP benchmark: client -> mailsift content filter (2 scan workers) -> local sink.

Starts a local SMTP sink and `mailsift serve` (SQLite store in a temp dir) as subprocesses, then
sends the messages of the benchmark mix over several concurrent SMTP sessions with aiosmtplib and
prints messages/second and per-message latency (MAIL FROM to the reply to DATA) p50/p99.

    python bench/smtp_bench.py [--messages 2000] [--concurrency 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib

HERE = Path(__file__).resolve().parent
MIX = HERE.parent.parent / "shared" / "bench" / "mix-1000.mbox.gz"

SINK = r"""
import sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
class H:
    n = 0
    async def handle_DATA(self, server, session, envelope):
        H.n += 1
        return "250 2.0.0 Ok"
class C(Controller):
    def factory(self):
        cls = type("S", (SMTP,), {"line_length_limit": 1 << 20})
        return cls(self.handler, **self.SMTP_kwargs)
c = C(H(), hostname="127.0.0.1", port=int(sys.argv[1]), data_size_limit=None)
c.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"port {port} did not open")


async def send_all(port: int, messages: list[bytes], total: int, concurrency: int
                   ) -> tuple[list[float], int]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(messages[i % len(messages)].replace(
            b"\nSubject:", f"\nX-Bench-Seq: {i}\nSubject:".encode(), 1))
    latencies: list[float] = []
    failures = 0

    async def worker() -> None:
        nonlocal failures
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=120)
        await client.connect()
        while not queue.empty():
            raw = queue.get_nowait()
            start = time.perf_counter()
            try:
                await client.sendmail("bench@example.org", ["user@example.net"], raw)
            except aiosmtplib.SMTPException:
                failures += 1
                await client.rset()
            latencies.append(time.perf_counter() - start)
        await client.quit()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mix", type=Path, default=MIX)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "src"))
    from mailsift.parsing.sources import iter_messages

    messages = [raw for _, raw in iter_messages([str(args.mix)])]
    tmp = Path(tempfile.mkdtemp(prefix="mailsift-bench-"))
    sink_port, smtp_port = free_port(), free_port()
    (tmp / "mailsift.toml").write_text(f"""
[store]
data_dir = "{tmp / 'data'}"
[gateway]
next_hop_port = {sink_port}
workers = {args.workers}
[smtp]
port = {smtp_port}
[http]
enabled = false
[milter]
enabled = false
[scan]
offline = true
""")
    env = dict(os.environ)
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(sink_port)], stdout=subprocess.PIPE)
    gw = subprocess.Popen([sys.executable, "-m", "mailsift", "serve", "--config",
                           str(tmp / "mailsift.toml"), "--log-level", "WARNING"], env=env)
    try:
        wait_port(sink_port)
        wait_port(smtp_port, 120)
        asyncio.run(send_all(smtp_port, messages[:50], 50, 4))  # warm-up
        start = time.perf_counter()
        latencies, failures = asyncio.run(
            send_all(smtp_port, messages, args.messages, args.concurrency))
        wall = time.perf_counter() - start
    finally:
        gw.terminate()
        sink.terminate()
        gw.wait(30)
        sink.wait(30)
    latencies.sort()
    n = len(latencies)
    print(f"data: {args.mix} cycled to {args.messages} messages, {args.concurrency} concurrent "
          f"SMTP sessions, {args.workers} scan workers, SQLite store, offline checks")
    print(f"throughput: {n / wall:.0f} messages/s ({wall:.1f} s), failures: {failures}")
    print(f"latency MAIL->DATA reply: p50 {latencies[n // 2] * 1000:.1f} ms  "
          f"p99 {latencies[int(n * 0.99)] * 1000:.1f} ms  max {latencies[-1] * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
