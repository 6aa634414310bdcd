"""Reading the DATA of an SMTP transaction in large pieces instead of line by line.

aiosmtpd reads DATA one line at a time (one ``readuntil`` and a few Python statements per line);
for a typical 13 KB, 250-line message that was the largest single cost of the gateway's event
loop. This reader asks the stream for everything up to the next ``.<CR><LF>`` and checks whether
it starts a line, so it wakes up once per such dot instead of once per line, and never reads past
the end of the message (a client may pipeline its next command right after the final dot).

The rules are aiosmtpd's (and RFC 5321's), so the two readers accept the same bytes:

* only ``<CR><LF>.<CR><LF>`` ends the data (a bare LF or CR around the dot does not: no SMTP
  smuggling), and a message may be empty (the first line is the dot);
* a leading dot of a line is removed (RFC 5321 4.5.2), everything else is kept byte for byte;
* a line longer than ``max_line`` or data larger than ``max_bytes`` is read to its end and then
  refused (500 / 552), as RFC 5321 4.2.5 implies, without keeping the data in memory (when a
  message breaks both limits, the reply may name the other one than aiosmtpd would).
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

__all__ = ["DataOutcome", "DataProblem", "read_data"]

_DOT_LINE = b".\r\n"
_CRLF = b"\r\n"


class DataProblem(enum.Enum):
    TOO_LONG_LINE = "500 Line too long (see RFC5321 4.5.3.1.6)"
    TOO_MUCH_DATA = "552 Error: Too much mail data"


@dataclass(frozen=True, slots=True)
class DataOutcome:
    """The message as sent (dots unstuffed), or the problem that made us refuse it."""

    content: bytes = b""
    problem: DataProblem | None = None


def _too_long(line_part: bytes | bytearray, max_line: int) -> bool:
    """Whether a line in ``line_part`` (which starts at a line start) exceeds ``max_line``
    bytes with its CRLF."""
    return len(line_part) > max_line - 2 and max(map(len, line_part.split(_CRLF))) > max_line - 2


def _unstuff(data: bytearray) -> bytes:
    if data.startswith(b"."):
        del data[0]
    return bytes(data).replace(b"\r\n.", _CRLF)


async def read_data(reader: asyncio.StreamReader, *, max_line: int,
                    max_bytes: int | None) -> DataOutcome:
    """Read one message's DATA from ``reader``, which stands right after the ``354`` reply.

    ``max_line`` counts a line with its CRLF, like aiosmtpd's ``line_length_limit``; it must be
    at most the reader's own limit. Raises ``asyncio.IncompleteReadError`` if the connection
    closes before the final dot.
    """
    data = bytearray()
    problem: DataProblem | None = None
    before = _CRLF  # the last two bytes read: DATA's own command line ended with CRLF
    line_start = 0  # where the line being read starts in ``data``
    total = 0
    while True:
        try:
            piece = await reader.readuntil(_DOT_LINE)
        except asyncio.LimitOverrunError as exc:
            # No dot line within the reader's limit: take what can be taken and go on.
            piece = await reader.readexactly(exc.consumed)
            ends = False
        else:
            ends = (before + piece[:-3])[-2:] == _CRLF  # the dot starts a line: the end
            if ends:
                piece = piece[:-3]
        if piece:
            before = (before + piece[-2:])[-2:]
        total += len(piece)
        if problem is None:
            if max_bytes and total > max_bytes:
                problem = DataProblem.TOO_MUCH_DATA
                data.clear()
            else:
                data += piece
                if _too_long(data[line_start:], max_line):
                    problem = DataProblem.TOO_LONG_LINE
                    data.clear()
                elif (crlf := data.rfind(_CRLF, line_start)) >= 0:
                    line_start = crlf + 2
        if ends:
            break
    if problem is not None:
        return DataOutcome(problem=problem)
    return DataOutcome(content=_unstuff(data))
