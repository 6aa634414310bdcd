"""Where messages come from on the command line: .eml files, mbox (plain or gzip), maildirs,
folders of those, and stdin. Yields ``(id, raw bytes)``; for an mbox the id is the 0-based index
of the message in file order (the ``mailsift scan`` contract), prefixed by the path when several
inputs are given.

mbox files are streamed line by line (the phishing corpus is ~500 MB unpacked); ``>From `` lines
are unescaped one level (mboxrd), which is also right for the common mboxo files. ``mbox_entry``
writes the other way round (mboxrd), so what it writes reads back byte for byte.
"""

from __future__ import annotations

import gzip
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from mailsift.core.errors import InputError

__all__ = ["iter_mbox", "iter_messages", "looks_like_mbox", "mbox_entry"]


def looks_like_mbox(head: bytes) -> bool:
    return head.startswith(b"From ") and b"\n" in head[:1024]


def iter_mbox(stream: Iterable[bytes]) -> Iterator[bytes]:
    """Split an mbox byte stream into messages."""
    current: list[bytes] = []
    started = False
    for line in stream:
        if line.startswith(b"From "):
            if started:
                yield _finish(current)
            current = []
            started = True
            continue
        if not started:
            continue
        if line.startswith(b">") and line.lstrip(b">").startswith(b"From "):
            line = line[1:]
        current.append(line)
    if started:
        yield _finish(current)


_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)


def mbox_entry(raw: bytes, *, sender: str | None = None, when: float | None = None) -> bytes:
    """One message as an mboxrd entry: a ``From `` separator line, the message with every
    ``>*From `` line quoted once more, and the blank line that ends the entry. ``iter_mbox``
    reads it back as ``raw`` (plus a final newline when ``raw`` had none)."""
    who = (sender or "").strip().strip("<>") or "MAILER-DAEMON"
    who = "".join(who.split()) or "MAILER-DAEMON"  # one word: readers split the line on spaces
    stamp = time.asctime(time.gmtime(time.time() if when is None else when))
    body = _FROM_LINE.sub(rb">\1", raw)
    if not body.endswith(b"\n"):
        body += b"\n"
    return f"From {who} {stamp}\n".encode("utf-8", "surrogateescape") + body + b"\n"


def _finish(lines: list[bytes]) -> bytes:
    # The blank line before the next "From " separator belongs to the mbox, not the message.
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return b"".join(lines)


def _open(path: Path) -> BinaryIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _iter_file(path: Path, single: bool) -> Iterator[tuple[str, bytes]]:
    """One file: its messages with ids ``N`` (single mbox input), ``PATH:N`` or ``PATH``."""
    try:
        with _open(path) as fh:
            head = fh.peek(1024)[:1024] if hasattr(fh, "peek") else b""
            if looks_like_mbox(head) or ".mbox" in path.name:
                prefix = "" if single else f"{path}:"
                for index, raw in enumerate(iter_mbox(fh)):
                    yield f"{prefix}{index}", raw
            else:
                yield str(path), fh.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def iter_messages(paths: Iterable[str], *, stdin: BinaryIO | None = None
                  ) -> Iterator[tuple[str, bytes]]:
    """Every message of every input, in order. Raises ``InputError`` for unreadable input."""
    for name, item in iter_messages_or_errors(paths, stdin=stdin):
        if isinstance(item, InputError):
            raise item
        yield name, item


def iter_messages_or_errors(paths: Iterable[str], *, stdin: BinaryIO | None = None
                            ) -> Iterator[tuple[str, bytes | InputError]]:
    """Like :func:`iter_messages`, but an unreadable file (or path) is yielded as its
    ``InputError`` in its place and the rest is still read: one bad file in a folder must not
    abandon the others."""
    paths = list(paths)
    many = len(paths) > 1
    for name in paths:
        if name == "-":
            data = (stdin or sys.stdin.buffer).read()
            if looks_like_mbox(data[:1024]):
                for index, raw in enumerate(iter_mbox(data.splitlines(keepends=True))):
                    yield (f"-:{index}" if many else str(index)), raw
            else:
                yield "-", data
            continue
        path = Path(name)
        if not path.exists():
            yield name, InputError(f"no such file or directory: {name}")
            continue
        if path.is_dir():
            if _is_maildir(path):
                files = sorted(p for sub in ("cur", "new") for p in (path / sub).iterdir()
                               if p.is_file())
            else:
                files = sorted(p for p in path.rglob("*") if p.is_file()
                               and (p.suffix in (".eml", ".msg", ".mbox", ".gz")))
            for file in files:
                yield from _guarded(_iter_file(file, single=False), str(file))
            continue
        if not os.access(path, os.R_OK):
            yield name, InputError(f"permission denied: {name}")
            continue
        yield from _guarded(_iter_file(path, single=not many), name)


def _guarded(items: Iterator[tuple[str, bytes]], name: str
             ) -> Iterator[tuple[str, bytes | InputError]]:
    try:
        yield from items
    except InputError as exc:  # the file's messages read so far were yielded already
        yield name, exc
