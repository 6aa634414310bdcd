"""``mailsift scan``: scan files, mailboxes or stdin and explain each verdict.

    mailsift scan [PATH ...] [--format text|json|jsonl] [--workers N] [--offline]
                  [--client-ip IP] [--helo NAME] [--mail-from ADDR] [--rcpt ADDR ...]
                  [--dns HOST:PORT] [--config FILE]

PATH is an .eml file, an mbox (plain or .gz), a maildir, a folder, or ``-`` for stdin. For mbox
input the ``id`` of each message is its 0-based index in file order. A message whose scan fails
is reported in its place as ``{"id", "error", "size"}`` and the run goes on; the exit status is
then 1 (0: all scanned, 2: bad usage or unreadable input).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import multiprocessing
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from mailsift.config import load_settings
from mailsift.config.schema import Settings
from mailsift.core.envelope import Connection, Envelope
from mailsift.core.errors import InputError
from mailsift.parsing.sources import iter_messages_or_errors

__all__ = ["register"]

_CHUNK = 16
_worker: dict[str, Any] = {}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("scan", help="scan messages and explain the verdicts",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="PATH", help=".eml, mbox, .mbox.gz, maildir or -")
    p.add_argument("--format", choices=("text", "json", "jsonl"), default="text")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="scan in N parallel processes (default: [scan] max_workers, 1)")
    p.add_argument("--offline", action="store_true", default=None,
                   help="skip every DNS-based check (said so in the result)")
    p.add_argument("--client-ip", metavar="IP")
    p.add_argument("--helo", metavar="NAME")
    p.add_argument("--mail-from", metavar="ADDR")
    p.add_argument("--rcpt", metavar="ADDR", action="extend", nargs="+", default=[])
    p.add_argument("--dns", metavar="HOST:PORT", help="ask this DNS server (e.g. a test server)")
    p.add_argument("--config", metavar="FILE")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    p.set_defaults(func=run)


def _envelope(args: argparse.Namespace) -> Envelope:
    if args.client_ip:
        try:
            ipaddress.ip_address(args.client_ip)
        except ValueError as exc:
            raise InputError(f"--client-ip {args.client_ip!r} is not an IP address") from exc
    return Envelope(
        mail_from=args.mail_from,
        rcpt_to=tuple(args.rcpt),
        connection=Connection(client_ip=args.client_ip, helo=args.helo),
    )


def _validate_dns(value: str | None) -> None:
    if value is None:
        return
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--dns must be HOST:PORT, got {value!r}")


def _init_worker(settings: Settings, offline: bool | None, dns: str | None, fmt: str) -> None:
    from mailsift.pipeline.build import ScanOptions, build_pipeline

    _worker["pipeline"] = build_pipeline(settings, ScanOptions(offline=offline, dns_server=dns))
    _worker["format"] = fmt


#: what a worker hands back per message: the rendered result, and whether it is an error
Rendered = tuple[str, bool]


#: a message, or the text of why an input could not be read (reported in its place)
Item = tuple[str, bytes | str]


def _scan_chunk(chunk: list[Item], envelope: Envelope) -> list[Rendered]:
    from mailsift.interfaces.cli.render import render_text

    pipeline = _worker["pipeline"]
    fmt = _worker["format"]
    out: list[Rendered] = []
    for msg_id, raw in chunk:
        if isinstance(raw, str):
            out.append((_error(msg_id, InputError(raw), 0, fmt), True))
            continue
        try:
            result = pipeline.scan(raw, envelope, message_id=msg_id)
            if fmt == "text":
                out.append((render_text(result), False))
            else:
                out.append((json.dumps(result.to_dict(), ensure_ascii=False,
                                       indent=2 if fmt == "json" else None), False))
        except Exception as exc:  # one message never abandons the rest of the input
            out.append((_error(msg_id, exc, len(raw), fmt), True))
    return out


def _error(msg_id: str, exc: BaseException, size: int, fmt: str) -> str:
    error = f"{type(exc).__name__}: {exc}"[:500]
    if fmt == "text":
        return f"message {msg_id}: ERROR {error} ({size} bytes); not scanned"
    return json.dumps({"id": msg_id, "error": error, "size": size}, ensure_ascii=False,
                      indent=2 if fmt == "json" else None)


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _parallel(items: Iterable[Item], envelope: Envelope, workers: int,
              initargs: tuple[Any, ...]) -> Iterator[list[Rendered]]:
    # Build the pipeline once here and fork: workers inherit it ready (rules compiled, public
    # suffix list parsed) instead of each spending ~0.5 s rebuilding it. This command has no
    # threads or event loop yet, so fork is safe; where fork does not exist, spawn and rebuild.
    if "fork" in multiprocessing.get_all_start_methods():
        _init_worker(*initargs)
        context = multiprocessing.get_context("fork")
        pool = ProcessPoolExecutor(workers, mp_context=context)
    else:  # pragma: no cover - not on Linux
        pool = ProcessPoolExecutor(workers, initializer=_init_worker, initargs=initargs)
    with pool:
        pending: deque[Future[list[Rendered]]] = deque()
        for chunk in _chunks(items, _CHUNK):
            pending.append(pool.submit(_scan_chunk, chunk, envelope))
            while len(pending) >= workers * 4:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise InputError("--workers must be at least 1")
    _validate_dns(args.dns)
    paths = args.paths or ["-"]
    if paths == ["-"] and sys.stdin.isatty():
        raise InputError("no input: give PATH arguments or pipe a message on stdin")
    settings = load_settings(args.config).settings
    from mailsift.detectors.registry import unavailable_detectors

    for line in unavailable_detectors(settings).values():
        # ML is on by default: without its extra it is left out, never silently
        print(f"mailsift: note: {line}", file=sys.stderr)
    offline = settings.scan.offline if args.offline is None else args.offline
    if offline and settings.reputation.configured:
        print("mailsift: note: offline: the configured DNS lists ([reputation]) are not "
              "queried (REPUTATION_OFFLINE in each result)", file=sys.stderr)
    if args.workers is None:
        args.workers = settings.scan.max_workers
    envelope = _envelope(args)
    initargs = (settings, args.offline, args.dns, args.format)
    items = ((name, str(got) if isinstance(got, InputError) else got)
             for name, got in iter_messages_or_errors(paths))
    # Read the first item eagerly so unreadable input fails before any output; later
    # unreadable files are reported in their place and the rest is still scanned.
    first = next(items, None)
    if first is None:
        print("mailsift: no messages found in input", file=sys.stderr)
        return 0
    if isinstance(first[1], str):
        raise InputError(first[1])
    all_items = _prepend(first, items)
    if args.workers > 1:
        batches = _parallel(all_items, envelope, args.workers, initargs)
    else:
        _init_worker(*initargs)
        batches = (_scan_chunk(chunk, envelope) for chunk in _chunks(all_items, _CHUNK))
    progress = None
    if sys.stderr.isatty() and not args.no_progress and _bulk(paths):
        from tqdm import tqdm

        progress = tqdm(unit="msg", file=sys.stderr)
    writer = _Writer(sys.stdout, args.format)
    errors = 0
    for batch in batches:
        for rendered, failed in batch:
            writer.write(rendered)
            errors += failed
        if progress is not None:
            progress.update(len(batch))
    writer.close()
    if progress is not None:
        progress.close()
    if errors:
        print(f"mailsift: {errors} message(s) could not be scanned (see their error objects)",
              file=sys.stderr)
        return 1
    return 0


class _Writer:
    """json: one object for one message, an array for several; jsonl: a line each; text: blocks."""

    def __init__(self, out: Any, fmt: str) -> None:
        self.out = out
        self.fmt = fmt
        self.count = 0
        self.held: str | None = None

    def write(self, rendered: str) -> None:
        if self.fmt == "json":
            if self.count == 0:
                self.held = rendered
            elif self.count == 1:
                self.out.write("[\n" + (self.held or "") + ",\n" + rendered)
                self.held = None
            else:
                self.out.write(",\n" + rendered)
        else:
            if self.fmt == "text" and self.count:
                self.out.write("\n")
            self.out.write(rendered + "\n")
        self.count += 1

    def close(self) -> None:
        if self.fmt == "json":
            if self.held is not None:
                self.out.write(self.held + "\n")
            elif self.count > 1:
                self.out.write("\n]\n")
        self.out.flush()


def _bulk(paths: list[str]) -> bool:
    """Whether the output may hold many messages (JSON array, progress bar)."""
    from pathlib import Path

    if len(paths) > 1:
        return True
    p = Path(paths[0])
    return paths[0] == "-" or p.is_dir() or ".mbox" in p.name or p.suffix == ".gz"


def _prepend(first: Item, rest: Iterator[Item]) -> Iterator[Item]:
    yield first
    yield from rest
