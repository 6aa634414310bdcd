"""End-to-end SMTP benchmark: client -> mailsift content filter (2 scan workers) -> local sink.

Starts a local SMTP sink and `mailsift serve` (SQLite store in a temp dir) as subprocesses, then
sends the messages of the benchmark mix over several concurrent SMTP sessions with aiosmtplib and
prints messages/second and per-message latency (MAIL FROM to the reply to DATA) p50/p99.

    python bench/smtp_bench.py [--messages 2000] [--concurrency 8,16,24,32] [--workers 2]
                               [--sink lean|aiosmtpd] [--client lean|aiosmtplib] [--repeat 3]
                               [--store-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
                               [--blob-backend auto|local|postgresql]

With ``--store-url`` the store (and the originals, by default, and the sender history) live in
PostgreSQL, in a fresh schema dropped afterwards. At the end it prints how much the store grew
per message (database plus blobs), i.e. the store growth per million messages of this mix.
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

# The next hop stands in for Postfix (C, a few microseconds per command): a minimal SMTP sink
# on raw asyncio that answers every command and counts messages, so that the two cores go to
# the gateway rather than to a Python SMTP server. `--sink aiosmtpd` uses aiosmtpd instead.
LEAN_SINK = r"""
import asyncio, sys

class Sink(asyncio.Protocol):
    def connection_made(self, transport):
        self.t, self.buf, self.data = transport, b"", False
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, chunk):
        self.buf += chunk
        while True:
            if self.data:
                if self.buf.startswith(b".\r\n"):
                    end = 0
                else:
                    end = self.buf.find(b"\r\n.\r\n")
                    if end < 0:
                        return
                    end += 2
                self.buf, self.data = self.buf[end + 3:], False
                self.t.write(b"250 2.0.0 Ok: queued\r\n")
                continue
            line, sep, rest = self.buf.partition(b"\r\n")
            if not sep:
                return
            self.buf = rest
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.t.write(b"250-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n")
            elif verb == b"DATA":
                self.data = True
                self.t.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"QUIT":
                self.t.write(b"221 Bye\r\n")
                self.t.close()
                return
            else:
                self.t.write(b"250 Ok\r\n")

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Sink, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()

asyncio.run(main())
"""

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


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one live process, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def cpu_snapshot(gateway: int, sink: int) -> dict[str, float]:
    """CPU seconds so far of each part: it says where the cores went, whatever else runs."""
    client = os.times()
    return {"gateway main process": cpu_seconds(gateway),
            "scan workers": sum(cpu_seconds(c) for c in children(gateway)),
            "sink": cpu_seconds(sink),
            "client (this process)": client.user + client.system}


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


def wire_form(raw: bytes) -> bytes:
    """The DATA bytes of a message: CRLF line ends, dots stuffed, the final dot."""
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n"
                    for line in lines) + b".\r\n"


class LeanClient:
    """A minimal SMTP sender on raw asyncio streams, standing in for the sending MTA (Postfix's
    smtp client is C): the benchmark's two cores should go to the gateway, not to a Python
    load generator. Plain ESMTP, one command and one reply at a time, as aiosmtplib does."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def reply(self) -> int:
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("connection closed")
            if line[3:4] != b"-":
                return int(line[:3])

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        await self.reply()
        self.writer.write(b"EHLO bench.example\r\n")
        await self.reply()

    async def send(self, wire: bytes) -> bool:
        w = self.writer
        w.write(b"MAIL FROM:<bench@example.org>\r\n")
        ok = await self.reply() == 250
        w.write(b"RCPT TO:<user@example.net>\r\n")
        ok = await self.reply() == 250 and ok
        w.write(b"DATA\r\n")
        if await self.reply() != 354:
            w.write(b"RSET\r\n")
            await self.reply()
            return False
        w.write(wire)
        return await self.reply() == 250 and ok

    async def quit(self) -> None:
        self.writer.write(b"QUIT\r\n")
        await self.reply()
        self.writer.close()


async def send_all(port: int, messages: list[bytes], total: int, concurrency: int,
                   first: int = 0, client: str = "lean") -> tuple[list[float], int]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for i in range(first, first + total):  # a unique header each: no message is a retry
        raw = messages[i % len(messages)].replace(
            b"\nSubject:", f"\nX-Bench-Seq: {i}\nSubject:".encode(), 1)
        queue.put_nowait(wire_form(raw) if client == "lean" else raw)
    latencies: list[float] = []
    failures = 0

    async def lean() -> None:
        nonlocal failures
        smtp = LeanClient(port)
        await smtp.connect()
        while not queue.empty():
            wire = queue.get_nowait()
            start = time.perf_counter()
            if not await smtp.send(wire):
                failures += 1
            latencies.append(time.perf_counter() - start)
        await smtp.quit()

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

    await asyncio.gather(*((lean if client == "lean" else worker)() for _ in range(concurrency)))
    return latencies, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", default="16",
                        help="concurrent SMTP sessions; a comma list measures each in turn")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mix", type=Path, default=MIX)
    parser.add_argument("--sink", choices=("lean", "aiosmtpd"), default="lean",
                        help="the next hop: a minimal asyncio sink (default) or aiosmtpd")
    parser.add_argument("--client", choices=("lean", "aiosmtplib"), default="lean",
                        help="the sender: a minimal asyncio SMTP client (default) or aiosmtplib")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per level; with more than one, also the median run by "
                             "throughput (the machine's speed varies between runs)")
    parser.add_argument("--store-url", default="",
                        help="SQLAlchemy URL of the store (default: SQLite in the temp dir)")
    parser.add_argument("--blob-backend", default="auto",
                        choices=("auto", "local", "postgresql"))
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "src"))
    from mailsift.parsing.sources import iter_messages
    from mailsift.testing.gateway import smtp_only_config

    messages = [raw for _, raw in iter_messages([str(args.mix)])]
    tmp = Path(tempfile.mkdtemp(prefix="mailsift-bench-"))
    sink_port, smtp_port = free_port(), free_port()
    schema = f"mailsift_bench_{os.getpid()}" if args.store_url else ""
    store_lines = (f'url = "{args.store_url}"\ndb_schema = "{schema}"\n'
                   if args.store_url else "") + f'blob_backend = "{args.blob_backend}"\n'
    (tmp / "mailsift.toml").write_text(smtp_only_config(
        tmp / "data", sink_port, smtp_port, workers=args.workers, store=store_lines))
    env = dict(os.environ)
    sink = subprocess.Popen([sys.executable, "-c", LEAN_SINK if args.sink == "lean" else SINK,
                             str(sink_port)], stdout=subprocess.PIPE)
    gw = subprocess.Popen([sys.executable, "-m", "mailsift", "serve", "--config",
                           str(tmp / "mailsift.toml"), "--log-level", "WARNING"], env=env)
    levels = [int(c) for c in str(args.concurrency).split(",")]
    print(f"data: {args.mix} cycled, {args.messages} messages per level, {args.workers} scan "
          f"workers, {'PostgreSQL' if args.store_url else 'SQLite'} store "
          f"(blobs: {args.blob_backend}), offline checks, {args.client} client, {args.sink} sink; "
          "latency is MAIL FROM to "
          "the reply to DATA; CPU is per message, by process")
    first = 50
    sent = 50
    try:
        wait_port(sink_port)
        wait_port(smtp_port, 120)
        asyncio.run(send_all(smtp_port, messages[:50], 50, 4, 0, args.client))  # warm-up
        for level in levels:
            runs = []
            for _ in range(args.repeat):
                before = cpu_snapshot(gw.pid, sink.pid)
                start = time.perf_counter()
                latencies, failures = asyncio.run(
                    send_all(smtp_port, messages, args.messages, level, first, args.client))
                wall = time.perf_counter() - start
                after = cpu_snapshot(gw.pid, sink.pid)
                first += args.messages
                sent += args.messages
                latencies.sort()
                n = len(latencies)
                cpu = "  ".join(f"{name} {(after[name] - before[name]) * 1000 / max(n, 1):.2f}"
                                for name in before)
                line = (f"concurrency {level}: throughput {n / wall:.0f} messages/s "
                        f"({wall:.1f} s), failures {failures}; latency p50 "
                        f"{latencies[n // 2] * 1000:.1f} ms  p99 "
                        f"{latencies[int(n * 0.99)] * 1000:.1f} ms  max "
                        f"{latencies[-1] * 1000:.1f} ms; CPU ms: {cpu}")
                print(line, flush=True)
                runs.append((n / wall, line))
            if len(runs) > 1:
                runs.sort()
                print(f"median of {len(runs)}: {runs[len(runs) // 2][1]}", flush=True)
        size = store_size(tmp / "data", args.store_url, schema)
        print(f"store growth: {size / sent:.0f} bytes per message ({size / 1e6:.1f} MB for "
              f"{sent} messages: database + blobs + history, keep_raw = quarantine) = "
              f"{size / sent:.0f} MB per million messages of this mix", flush=True)
    finally:
        gw.terminate()
        sink.terminate()
        gw.wait(30)
        sink.wait(30)
        if schema:
            drop_schema(args.store_url, schema)
    return 0


def _pg(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def store_size(data: Path, url: str, schema: str) -> int:
    """Bytes on disk: the data dir (SQLite files, local blobs, spool) plus, for PostgreSQL, the
    schema's tables with their indexes and TOAST (where the originals are)."""
    total = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    if url:
        import psycopg

        with psycopg.connect(_pg(url)) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind = 'r'", (schema,)).fetchone()
            total += int(row[0]) if row else 0
    return total


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(_pg(url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    sys.exit(main())
