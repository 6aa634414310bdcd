"""mailsift against Rspamd on the same machine, in one run (issue 26).

Where Debian's ``rspamd`` (and ``redis-server``, for its Bayes) is installed, this

1. starts Rspamd in the foreground with a private config (a ``LOCAL_CONFDIR`` in a temp dir over
   the packaged ``/etc/rspamd``): workers on loopback ports only, every module that asks the
   network switched off (RBL/SURBL, SPF, DKIM, DMARC, ARC, ASN, fuzzy, phishing feeds, HELO
   checks, updates, whitelists built on those), its resolver a local test DNS server
   (``mailsift.testing.dns`` with no zones: NXDOMAIN for every name at once, so that nothing
   leaves the machine and nothing waits for a timeout), and its Bayes on a private
   ``redis-server`` (no persistence);
2. trains that Bayes on ``mix-train-ham`` / ``mix-train-spam`` with ``rspamc learn_ham`` /
   ``learn_spam`` (not timed);
3. scores ``mix-1000`` through Rspamd's ``POST /checkv2`` with one lean HTTP/1.1 client
   (keep-alive, ``--http-concurrency`` connections), then with the same client through
   mailsift's ``/checkv2`` (``mailsift serve``, 2 scan workers, offline), then sends the mix
   to the same ``mailsift serve`` over SMTP (the lean client and sink of ``smtp_bench.py``);
4. prints, per side, CPU milliseconds per message of every process of the daemon (from
   ``/proc/<pid>/stat`` before and after: Rspamd's main process and workers, its Redis listed
   apart; mailsift's main process and scan workers), messages per second, the actions, and
   the ratios.

    python bench/versus_rspamd.py [--repeat 3] [--http-concurrency 8] [--smtp-concurrency 16]

Without Rspamd it prints why and exits 0 (``make bench-rspamd`` runs it). Install it with
``apt-get install -y --no-install-recommends rspamd redis-server``; Debian starts no daemon
in a container, and this script needs none: it starts its own and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import smtp_bench  # noqa: E402  (bench/ is not a package)

SHARED = HERE.parent.parent / "shared" / "bench"
MIX = SHARED / "mix-1000.mbox.gz"

# modules that would ask DNS or fetch maps and feeds: off, so that Rspamd runs offline as
# mailsift's side does (``[scan] offline``: no authentication, no DNS lists)
NETWORK_MODULES = ("rbl", "surbl", "spf", "dkim", "dmarc", "arc", "asn", "emails",
                   "fuzzy_check", "phishing", "hfilter", "rspamd_update", "mx_check",
                   "url_redirector", "neural", "reputation", "ratelimit", "greylist",
                   "history_redis", "replies", "bimi", "dkim_signing", "external_services",
                   "antivirus", "dcc", "spamtrap", "p0f", "clickhouse", "elastic",
                   "metric_exporter", "metadata_exporter", "whitelist")


def rspamd_missing() -> str:
    """Why this machine cannot run the comparison ('' when it can)."""
    missing = [b for b in ("rspamd", "rspamc", "redis-server") if shutil.which(b) is None]
    if missing:
        return (f"{', '.join(missing)} not installed (apt-get install -y "
                "--no-install-recommends rspamd redis-server)")
    if not Path("/etc/rspamd/rspamd.conf").is_file():
        return "/etc/rspamd/rspamd.conf missing (Debian's rspamd package ships it)"
    return ""


def write_rspamd_config(local: Path, *, normal: int, controller: int, redis: int,
                        dns: int, workers: int) -> None:
    """``local`` is Rspamd's ``LOCAL_CONFDIR``: local.d/ and override.d/ over /etc/rspamd."""
    (local / "local.d").mkdir(parents=True)
    (local / "override.d").mkdir()
    files = {
        "override.d/worker-normal.inc": f'bind_socket = "127.0.0.1:{normal}";\n'
                                        f"count = {workers};\n",
        "override.d/worker-controller.inc": f'bind_socket = "127.0.0.1:{controller}";\n'
                                            "count = 1;\n",
        "override.d/worker-proxy.inc": "enabled = false;\n",
        "override.d/worker-fuzzy.inc": "enabled = false;\n",
        # nothing leaves the machine: the only resolver is the local test server (a closed
        # port instead would make every reverse look-up wait for its timeout)
        "local.d/options.inc": f'dns {{ nameserver = ["127.0.0.1:{dns}"]; timeout = 1s; '
                               "retransmits = 1; }\n",
        "local.d/logging.inc": 'level = "error";\n',
        "local.d/classifier-bayes.conf": f'backend = "redis";\nservers = "127.0.0.1:{redis}";\n'
                                         "autolearn = false;\n",
    }
    files.update({f"local.d/{m}.conf": "enabled = false;\n" for m in NETWORK_MODULES})
    for name, text in files.items():
        (local / name).write_text(text)


@contextmanager
def running_rspamd(workers: int) -> Iterator[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="versus-rspamd-"))
    normal, controller, redis, dns = (smtp_bench.free_port() for _ in range(4))
    for d in ("db", "run", "log"):
        (tmp / d).mkdir()
    write_rspamd_config(tmp / "local", normal=normal, controller=controller, redis=redis,
                        dns=dns, workers=workers)
    (tmp / "no-zones.toml").write_text("")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "mailsift.testing.dns", str(tmp / "no-zones.toml"),
             "--port", str(dns)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(redis), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp / "db")], stdout=subprocess.DEVNULL))
        smtp_bench.wait_port(redis)
        user = ["-u", "_rspamd", "-g", "_rspamd"] if os.geteuid() == 0 else []
        if user:
            shutil.chown(tmp / "db", "_rspamd", "_rspamd")
            shutil.chown(tmp / "run", "_rspamd", "_rspamd")
            shutil.chown(tmp / "log", "_rspamd", "_rspamd")
        rspamd = subprocess.Popen(
            ["rspamd", "-f", *user, "-c", "/etc/rspamd/rspamd.conf",
             "--var", f"LOCAL_CONFDIR={tmp / 'local'}", "--var", f"DBDIR={tmp / 'db'}",
             "--var", f"RUNDIR={tmp / 'run'}", "--var", f"LOGDIR={tmp / 'log'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(rspamd)
        try:  # loading the config takes Rspamd ~15 s of CPU: minutes on a busy machine
            smtp_bench.wait_port(normal, 600)
            smtp_bench.wait_port(controller, 60)
        except SystemExit:
            rspamd.kill()
            err = rspamd.communicate()[1].decode(errors="replace")
            log = (tmp / "log" / "rspamd.log")
            raise SystemExit(f"rspamd did not start:\n{err[-2000:]}\n"
                             f"{log.read_text()[-2000:] if log.exists() else ''}") from None
        yield {"normal": normal, "controller": controller, "pid": rspamd.pid,
               "redis_pid": procs[1].pid, "tmp": tmp}
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (Rspamd's workers, mailsift's scan workers)."""
    found, todo = [pid], [pid]
    while todo:
        kids = smtp_bench.children(todo.pop())
        found += kids
        todo += kids
    return found


def cpu_tree(pid: int) -> float:
    return sum(smtp_bench.cpu_seconds(p) for p in descendants(pid))


def rss_tree(pid: int) -> int:
    """Resident bytes of ``pid`` and its descendants (proportional: shared pages counted
    once across the tree, from /proc/<pid>/smaps_rollup; RSS where that is missing)."""
    total = 0
    for p in descendants(pid):
        try:
            text = Path(f"/proc/{p}/smaps_rollup").read_text()
            key = "Pss:"
        except OSError:
            try:
                text = Path(f"/proc/{p}/status").read_text()
            except OSError:
                continue
            key = "VmRSS:"
        for line in text.splitlines():
            if line.startswith(key):
                total += int(line.split()[1]) * 1024
                break
    return total


def settle(pid: int, quiet: float = 0.02, timeout: float = 120) -> None:
    """Wait until the process tree is idle (start-up work such as compiling the regexps of
    Rspamd's hs_helper done), so that it is not counted as scanning."""
    deadline = time.time() + timeout
    last = cpu_tree(pid)
    while time.time() < deadline:
        time.sleep(1.0)
        now = cpu_tree(pid)
        if now - last < quiet:
            return
        last = now


def write_files(path: Path, out: Path) -> int:
    from mailsift.parsing.sources import iter_messages

    out.mkdir(parents=True)
    n = 0
    for n, (_, raw) in enumerate(iter_messages([str(path)]), 1):
        (out / f"{n:05d}.eml").write_bytes(raw)
    return n


def train(controller: int, tmp: Path) -> None:
    """``rspamc learn_ham`` / ``learn_spam`` on mix-train-* (Rspamd skips a message it cannot
    learn from, e.g. one already learned or with too few tokens, and says so)."""
    for kind in ("ham", "spam"):
        n = write_files(SHARED / f"mix-train-{kind}.mbox.gz", tmp / kind)
        done = subprocess.run(
            ["rspamc", "-h", f"127.0.0.1:{controller}", "-n", "4", "-t", "60",
             f"learn_{kind}", str(tmp / kind)], capture_output=True, text=True, timeout=900)
        learned = done.stdout.count("success = true")
        print(f"  Bayes: {learned} of {n} {kind} messages learned", flush=True)


class HttpClient:
    """A lean HTTP/1.1 client on asyncio streams (the same for both sides): one request at a
    time per connection, kept alive, reconnecting when the server closes."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def check(self, raw: bytes) -> dict[str, Any]:
        head = (f"POST /checkv2 HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Content-Length: {len(raw)}\r\nFrom: bench@example.org\r\n"
                "Rcpt: user@example.net\r\nIP: 203.0.113.5\r\nHelo: mail.example.org\r\n"
                "Connection: keep-alive\r\n\r\n").encode()
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            assert self.reader is not None
            try:
                self.writer.write(head + raw)
                status = await self.reader.readline()
                if not status:
                    raise ConnectionError("closed")
            except ConnectionError:
                self.writer.close()
                self.writer = None
                if attempt == 2:
                    raise
                continue
            headers: dict[str, str] = {}
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
            if headers.get("connection", "").lower() == "close":
                self.writer.close()
                self.writer = None
            if not status.split()[1].startswith(b"2"):
                raise RuntimeError(f"{status.decode().strip()}: {body[:200]!r}")
            reply: dict[str, Any] = json.loads(body)
            return reply
        raise AssertionError("unreachable")


async def check_all(port: int, messages: list[bytes], concurrency: int) -> list[dict[str, Any]]:
    replies: list[dict[str, Any]] = [{} for _ in messages]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(messages)):
        queue.put_nowait(i)

    async def one() -> None:
        client = HttpClient(port)
        while not queue.empty():
            i = queue.get_nowait()
            replies[i] = await client.check(messages[i])
        if client.writer is not None:
            client.writer.close()

    await asyncio.gather(*(one() for _ in range(concurrency)))
    return replies


def measure(pids: Callable[[], list[int]], n: int, work: Callable[[], Any]) -> dict[str, Any]:
    """CPU seconds of ``pids()`` (each a tree) and wall time around ``work()``."""
    before = [cpu_tree(p) for p in pids()]
    start = time.perf_counter()
    out = work()
    wall = time.perf_counter() - start
    after = [cpu_tree(p) for p in pids()]
    return {"cpu_ms": [(a - b) * 1000 / n for a, b in zip(after, before, strict=True)],
            "rate": n / wall, "wall": wall, "out": out}


def labels() -> list[str]:
    rows = (SHARED / "mix-1000.labels.tsv").read_text().splitlines()[1:]
    return [r.split("\t")[1] for r in rows]


def flagged(replies: list[dict[str, Any]], truth: list[str]) -> str:
    """Share of each label acted on (any action but 'no action'). Not an evaluation: a fresh
    mailsift store stages the release's newest rules and model (shadow, see docs/rollout.md),
    so its /checkv2 answers here enforce less than ``mailsift scan`` does on the same mix."""
    by: dict[str, list[bool]] = {}
    for reply, label in zip(replies, truth, strict=False):
        by.setdefault(label, []).append(reply.get("action") != "no action")
    return ", ".join(f"{k} {100 * sum(v) / len(v):.1f}% flagged" for k, v in sorted(by.items()))


def mailsift_config(tmp: Path, smtp: int, http: int, sink: int, workers: int) -> Path:
    """The node both benchmarks run: SMTP content filter, HTTP API, SQLite store, offline."""
    sections: dict[str, dict[str, Any]] = {
        "store": {"data_dir": str(tmp / "data")},
        "gateway": {"next_hop_port": sink, "workers": workers},
        "smtp": {"port": smtp}, "http": {"port": http}, "milter": {"enabled": False},
        "scan": {"offline": True}}
    path = tmp / "mailsift.toml"
    path.write_text("".join(  # JSON scalars are TOML scalars
        f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
        for name, values in sections.items()))
    return path


@contextmanager
def running_mailsift(workers: int) -> Iterator[dict[str, Any]]:
    """``mailsift serve`` (see :func:`mailsift_config`) and the lean sink as its next hop."""
    tmp = Path(tempfile.mkdtemp(prefix="versus-mailsift-"))
    sink_port, smtp_port, http_port = (smtp_bench.free_port() for _ in range(3))
    cfg = mailsift_config(tmp, smtp_port, http_port, sink_port, workers)
    sink = subprocess.Popen([sys.executable, "-c", smtp_bench.LEAN_SINK, str(sink_port)],
                            stdout=subprocess.PIPE)
    gw = subprocess.Popen([sys.executable, "-m", "mailsift", "serve", "--config", str(cfg),
                           "--log-level", "WARNING"])
    try:
        smtp_bench.wait_port(sink_port)
        smtp_bench.wait_port(smtp_port, 120)
        smtp_bench.wait_port(http_port, 60)
        yield {"pid": gw.pid, "smtp": smtp_port, "http": http_port}
    finally:
        gw.terminate()
        sink.terminate()
        gw.wait(30)
        sink.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="rounds (Rspamd, mailsift HTTP, "
                    "mailsift SMTP each round, alternating); the median round is the summary")
    ap.add_argument("--workers", type=int, default=2,
                    help="Rspamd normal workers and mailsift scan workers")
    ap.add_argument("--http-concurrency", type=int, default=8)
    ap.add_argument("--smtp-concurrency", type=int, default=16)
    ap.add_argument("--mix", type=Path, default=MIX)
    args = ap.parse_args()
    why = rspamd_missing()
    if why:
        print(f"skipped: {why}")
        return 0
    if not args.mix.exists():
        print(f"skipped: {args.mix} missing (the shared benchmark mix)")
        return 0
    sys.path.insert(0, str(HERE.parent / "src"))
    from mailsift.parsing.sources import iter_messages

    messages = [raw for _, raw in iter_messages([str(args.mix)])]
    truth = labels()
    n = len(messages)
    load = os.getloadavg()
    print(f"data: {args.mix.name} ({n} messages), {args.workers} workers each side, HTTP "
          f"client: {args.http_concurrency} keep-alive connections, SMTP: "
          f"{args.smtp_concurrency} sessions; load average {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f}", flush=True)
    rounds: list[dict[str, Any]] = []
    with running_rspamd(args.workers) as rs:
        print(f"rspamd {rspamd_version()} on 127.0.0.1:{rs['normal']}; training ...", flush=True)
        train(rs["controller"], rs["tmp"])
        with running_mailsift(args.workers) as ms:
            gw_pid, smtp_port, http_port = ms["pid"], ms["smtp"], ms["http"]
            # warm-up both (first scans load lazily), then wait for idle
            asyncio.run(check_all(rs["normal"], messages[:50], 4))
            asyncio.run(check_all(http_port, messages[:50], 4))
            asyncio.run(smtp_bench.send_all(smtp_port, messages[:50], 50, 4, 0))
            settle(rs["pid"])
            settle(gw_pid)
            first = 50
            for r in range(args.repeat):
                row: dict[str, Any] = {"load": os.getloadavg()[0]}
                rspamd = measure(lambda: [rs["pid"], rs["redis_pid"]], n, lambda: asyncio.run(
                    check_all(rs["normal"], messages, args.http_concurrency)))
                row["rspamd"] = rspamd
                row["rspamd_rss"] = rss_tree(rs["pid"]) + rss_tree(rs["redis_pid"])
                http = measure(lambda: [gw_pid], n, lambda: asyncio.run(
                    check_all(http_port, messages, args.http_concurrency)))
                row["http"] = http
                smtp = measure(lambda: [gw_pid], n, functools.partial(
                    asyncio.run, smtp_bench.send_all(smtp_port, messages, n,
                                                     args.smtp_concurrency, first)))
                first += n
                row["smtp"] = smtp
                row["mailsift_rss"] = rss_tree(gw_pid)
                rounds.append(row)
                report_round(r + 1, row, truth)
    summary(rounds)
    return 0


def rspamd_version() -> str:
    out = subprocess.run(["rspamd", "--version"], capture_output=True, text=True).stdout
    return out.strip().rsplit(" ", 1)[-1]


def report_round(r: int, row: dict[str, Any], truth: list[str]) -> None:
    rs, http, smtp = row["rspamd"], row["http"], row["smtp"]
    latencies, failures = smtp["out"]
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    print(f"round {r} (load {row['load']:.1f}):\n"
          f"  rspamd /checkv2     {rs['rate']:6.0f} msg/s  CPU ms/msg: daemon "
          f"{rs['cpu_ms'][0]:.2f} + redis {rs['cpu_ms'][1]:.2f}; "
          f"{flagged(rs['out'], truth)}; actions {dict(Counter(x['action'] for x in rs['out']))}\n"
          f"  mailsift /checkv2   {http['rate']:6.0f} msg/s  CPU ms/msg: all processes "
          f"{http['cpu_ms'][0]:.2f}; {flagged(http['out'], truth)}; actions "
          f"{dict(Counter(x['action'] for x in http['out']))}\n"
          f"  mailsift SMTP       {smtp['rate']:6.0f} msg/s  CPU ms/msg: all processes "
          f"{smtp['cpu_ms'][0]:.2f}; p99 {p99:.0f} ms, failures {failures}\n"
          f"  memory (PSS): rspamd+redis {row['rspamd_rss'] / 2**20:.0f} MiB, mailsift "
          f"{row['mailsift_rss'] / 2**20:.0f} MiB", flush=True)


def summary(rounds: list[dict[str, Any]]) -> None:
    def med(f: Callable[[dict[str, Any]], float]) -> float:
        return statistics.median(f(r) for r in rounds)

    rs_cpu = med(lambda r: r["rspamd"]["cpu_ms"][0])
    rs_all = med(lambda r: r["rspamd"]["cpu_ms"][0] + r["rspamd"]["cpu_ms"][1])
    http_cpu = med(lambda r: r["http"]["cpu_ms"][0])
    smtp_cpu = med(lambda r: r["smtp"]["cpu_ms"][0])
    rs_rate = med(lambda r: r["rspamd"]["rate"])
    http_rate = med(lambda r: r["http"]["rate"])
    smtp_rate = med(lambda r: r["smtp"]["rate"])
    print(f"median of {len(rounds)} rounds:\n"
          f"  CPU ms/msg: rspamd daemon {rs_cpu:.2f} (+redis: {rs_all:.2f}); mailsift "
          f"/checkv2 {http_cpu:.2f}; mailsift SMTP gateway end to end {smtp_cpu:.2f}\n"
          f"  msg/s: rspamd {rs_rate:.0f}; mailsift /checkv2 {http_rate:.0f}; SMTP "
          f"{smtp_rate:.0f}\n"
          f"  ratios (mailsift / rspamd daemon): CPU /checkv2 {http_cpu / rs_cpu:.2f}, "
          f"CPU SMTP {smtp_cpu / rs_cpu:.2f}; throughput /checkv2 {http_rate / rs_rate:.2f}, "
          f"SMTP {smtp_rate / rs_rate:.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
