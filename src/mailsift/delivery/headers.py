"""Result headers on raw bytes: strip what outsiders may not set, add what we decided.

We edit the header block as bytes (never re-serialise the message): re-encoding a parsed
message changes bytes that DKIM signatures cover and can break 8-bit or malformed mail that was
delivered fine before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

__all__ = ["MAILSIFT_HEADER", "add_headers", "split_header_block", "strip_headers", "tag_subject"]

def split_header_block(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """(header block incl. final line ending, blank line, body); header-only mail has no body.

    The header block ends at the first empty line, whatever its line endings (``\\n``,
    ``\\r\\n`` or a mix): the first line feed followed by ``\\n`` or ``\\r\\n``."""
    lf = raw.find(b"\n\n")
    crlf = raw.find(b"\n\r\n")
    if lf < 0 and crlf < 0:
        return raw, b"", b""
    if crlf < 0 or 0 <= lf < crlf:
        eol, end = lf, lf + 2
    else:
        eol, end = crlf, crlf + 3
    return raw[: eol + 1], raw[eol + 1 : end], raw[end:]


def _eol(raw: bytes) -> bytes:
    first = raw.find(b"\n")
    return b"\r\n" if first > 0 and raw[first - 1 : first] == b"\r" else b"\n"


def _fields(block: bytes) -> list[bytes]:
    """Header fields (with their continuation lines) in order."""
    fields: list[bytes] = []
    for line in block.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def strip_headers(raw: bytes, drop: Callable[[str, bytes], bool],
                  *, only_if: re.Pattern[bytes] | None = None) -> bytes:
    """Remove every header field for which ``drop(lower-case name, raw field)`` is true.

    ``only_if``: a pattern every droppable field matches; a header block without a match is
    returned as it is without being split into fields (the usual case, at C speed)."""
    block, blank, body = split_header_block(raw)
    if only_if is not None and only_if.search(block) is None:
        return raw
    kept = []
    fields = _fields(block)
    for field in fields:
        name = field.split(b":", 1)[0].strip().decode("latin-1").lower()
        if not drop(name, field):
            kept.append(field)
    if len(kept) == len(fields):
        return raw  # nothing to drop (the usual case): no copy
    return b"".join(kept) + blank + body


def _fold(name: str, value: str, eol: bytes) -> bytes:
    if value and len(name) + 2 + len(value) <= 76 and value == " ".join(value.split()):
        return f"{name}: {value}".encode() + eol  # fits on one line as it is
    value = " ".join(value.split())
    line = f"{name}: "
    out: list[str] = []
    for word in value.split(" "):
        if len(line) + len(word) > 76 and line.strip() != f"{name}:":
            out.append(line.rstrip())
            line = " "
        line += word + " "
    out.append(line.rstrip())
    return eol.join(s.encode("utf-8") for s in out) + eol


def add_headers(raw: bytes, headers: Sequence[tuple[str, str]]) -> bytes:
    """Prepend header fields (trace-header style, newest on top), in the message's line ending."""
    eol = _eol(raw)
    return b"".join(_fold(name, value, eol) for name, value in headers) + raw


def tag_subject(raw: bytes, tag: str) -> bytes:
    """Prefix the Subject with ``tag`` once (adds a Subject if there is none)."""
    if not tag:
        return raw
    block, blank, body = split_header_block(raw)
    encoded_tag = tag.encode("utf-8")
    fields = _fields(block)
    for i, field in enumerate(fields):
        name, _, value = field.partition(b":")
        if name.strip().lower() == b"subject":
            if value.lstrip().startswith(encoded_tag.strip()):
                return raw
            fields[i] = name + b": " + encoded_tag + value.lstrip(b" ")
            return b"".join(fields) + blank + body
    return add_headers(raw, [("Subject", tag.strip())])


def mailsift_header(name: str, field: bytes) -> bool:
    """Our own result headers: never trusted when they arrive from outside."""
    return name.startswith("x-mailsift-")


#: what every field ``mailsift_header`` drops contains (``strip_headers(only_if=...)``)
MAILSIFT_HEADER = re.compile(rb"x-mailsift-", re.I)


def header_values(raw: bytes, name: str) -> Iterable[bytes]:
    block, _, _ = split_header_block(raw)
    for field in _fields(block):
        field_name, _, value = field.partition(b":")
        if field_name.strip().lower() == name.lower().encode():
            yield value.strip()
