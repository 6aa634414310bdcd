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

__all__ = ["Transaction", "fold_value", "strip_brackets"]

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
