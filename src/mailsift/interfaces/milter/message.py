"""Rebuilding one SMTP transaction from milter callbacks: envelope, raw message, header indices.

The MTA hands a milter the message in pieces (envelope, then one callback per header, then body
chunks). The scan wants the raw RFC 5322 bytes, so they are put back together here: header
fields as ``Name: value`` with CRLF (folded values keep their continuation lines, normalised to
CRLF), a blank line, the body as received (Postfix sends it with CRLF line endings).

Header *positions* are recorded too: a milter deletes a header with ``chgheader(name, index, "")``
where ``index`` counts occurrences of that name (1-based), so stripping forged ``X-Mailsift-*``
or ``Authentication-Results`` fields needs those counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailsift.core.envelope import Connection, Envelope

__all__ = ["HeaderOp", "Transaction", "edits_between", "fold_value", "strip_brackets"]

_EOL = re.compile(rb"\r?\n")


def strip_brackets(address: str) -> str:
    """``<bob@example.net>`` -> ``bob@example.net``; ``<>`` -> ``""`` (the null sender)."""
    address = address.strip()
    if address.startswith("<") and address.endswith(">"):
        return address[1:-1]
    return address


def fold_value(value: str, width: int = 76) -> str:
    """Fold a header value for ``smfi_addheader``: libmilter takes ``\\n\\t`` continuations."""
    words = value.split()
    lines: list[str] = []
    line = ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\n\t".join(lines)


@dataclass
class Transaction:
    """Everything the milter learned about the current message (reset at MAIL FROM)."""

    connection: Connection = field(default_factory=Connection)
    mail_from: str = ""
    rcpt_to: list[str] = field(default_factory=list)
    smtputf8: bool = False
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)

    def start(self, mail_from: str, params: tuple[str, ...]) -> None:
        """A new transaction on the same connection: keep the connection, drop the rest."""
        self.mail_from = strip_brackets(mail_from)
        self.rcpt_to = []
        self.smtputf8 = any(p.upper() == "SMTPUTF8" for p in params)
        self.headers = []
        self.body = []

    def envelope(self) -> Envelope:
        return Envelope(mail_from=self.mail_from, rcpt_to=tuple(self.rcpt_to),
                        connection=self.connection, smtputf8=self.smtputf8)

    def raw(self) -> bytes:
        """The message as the MTA received it (modulo header whitespace the MTA normalised)."""
        parts = []
        for name, value in self.headers:
            # Continuation lines arrive with bare LF from Postfix; the message gets CRLF.
            parts.append(name + b": " + _EOL.sub(b"\r\n", value) + b"\r\n")
        parts.append(b"\r\n")
        parts.extend(self.body)
        return b"".join(parts)

    def occurrences(self) -> list[tuple[str, int, bytes]]:
        """Every header as (lower-case name, 1-based index among its name, value)."""
        seen: dict[str, int] = {}
        out = []
        for name, value in self.headers:
            key = name.decode("latin-1").lower()
            seen[key] = seen.get(key, 0) + 1
            out.append((key, seen[key], value))
        return out


# Headers the milter edits on its own (forged ones removed, result headers added): never part
# of the flow-rule edits.
_OWN = ("x-mailsift-", "authentication-results")


def _fields(raw: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    """The header fields (name, unfolded-line value) and the body of a message."""
    blank = re.search(rb"\r?\n\r?\n", raw)
    head, body = (raw[:blank.start()], raw[blank.end():]) if blank else (raw, b"")
    fields: list[tuple[str, bytes]] = []
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and fields:
            last, value = fields[-1]
            fields[-1] = (last, value + b"\n" + line)
        elif b":" in line:
            raw_name, _, value = line.partition(b":")
            fields.append((raw_name.decode("latin-1").strip(),
                           value[1:] if value[:1] == b" " else value))
    return fields, body


HeaderOp = tuple[str, str, int, str]  # ("change" | "insert", name, index, value)


def edits_between(original: bytes, edited: bytes, *, drop: tuple[str, ...] = ()
                  ) -> tuple[list[HeaderOp], bytes | None]:
    """The milter operations that turn ``original`` into ``edited``: per header name, changed
    values (``chgheader`` at the 1-based index among that name), deletions (value ``""``, last
    first) and new fields (``insheader`` at the top, in order); and the new body when it
    changed (``replacebody``). Header names starting with one of ``drop`` are deleted outright
    (outbound mail: our internal headers never leave)."""
    old_fields, old_body = _fields(original)
    new_fields, new_body = _fields(edited)
    names = list(dict.fromkeys(n.lower() for n, _ in (*old_fields, *new_fields)))
    ops: list[HeaderOp] = []
    inserts: list[HeaderOp] = []
    for key in names:
        if key.startswith(_OWN):
            continue
        old = [v for n, v in old_fields if n.lower() == key]
        new = [] if key.startswith(drop) else [v for n, v in new_fields if n.lower() == key]
        if old == new:
            continue
        name = next((n for n, _ in (*new_fields, *old_fields) if n.lower() == key), key)
        common = min(len(old), len(new))
        ops += [("change", name, i + 1, _text(new[i])) for i in range(common)
                if old[i] != new[i]]
        ops += [("change", name, i + 1, "") for i in range(len(old) - 1, common - 1, -1)]
        inserts += [("insert", name, 0, _text(v)) for v in new[common:]]
    return ops + inserts[::-1], (new_body if new_body != old_body else None)


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace").replace("\r\n", "\n").strip("\r\n")
