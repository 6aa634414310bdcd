"""The chunked DATA reader accepts exactly what aiosmtpd's line reader accepts."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsift.interfaces.smtp.data import DataOutcome, DataProblem, read_data

PIPELINED = b"MAIL FROM:<next@example.org>\r\n"


def reference(stream: bytes, max_line: int, max_bytes: int | None) -> tuple[DataOutcome, bytes]:
    """aiosmtpd 1.4's rules, line by line: only a CRLF-terminated "." line ends the data."""
    lines, rest, total, problem = [], stream, 0, None
    while True:
        idx = rest.find(b"\r\n")
        assert idx >= 0, "no end of data"
        line, rest = rest[:idx + 2], rest[idx + 2:]
        if line == b".\r\n":
            break
        total += len(line)
        if problem is None and max_bytes and total > max_bytes:
            problem = DataProblem.TOO_MUCH_DATA
        if problem is None and len(line) > max_line:
            problem = DataProblem.TOO_LONG_LINE
        lines.append(line[1:] if line.startswith(b".") else line)
    if problem:
        return DataOutcome(problem=problem), rest
    return DataOutcome(content=b"".join(lines)), rest


def run(stream: bytes, *, max_line: int = 1000, max_bytes: int | None = None,
        limit: int | None = None, chunk: int = 7) -> tuple[DataOutcome, bytes]:
    async def go() -> tuple[DataOutcome, bytes]:
        reader = asyncio.StreamReader(limit=limit or max_line)

        async def feed() -> None:  # arrives in small pieces, as over a network
            for i in range(0, len(stream), chunk):
                reader.feed_data(stream[i:i + chunk])
                await asyncio.sleep(0)
            reader.feed_eof()

        feeder = asyncio.create_task(feed())
        outcome = await read_data(reader, max_line=max_line, max_bytes=max_bytes)
        await feeder
        return outcome, await reader.read()
    return asyncio.run(go())


@pytest.mark.parametrize("body", [
    b"",
    b"one line\r\n",
    b"Subject: x\r\n\r\nHello.\r\nThanks.\r\n",
    b"..leading dot\r\n.\r\n..\r\nmid\r\n",
    b"bare\n.\nLF is not the end\r\n",
    b"bare\r.\rCR is not the end\r\n",
    b"ends with a dot.\r\n",
    b"\r\n",
])
def test_examples_match_the_line_reader(body: bytes) -> None:
    stuffed = body.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    stream = stuffed + b".\r\n" + PIPELINED
    got = run(stream)
    assert got == reference(stream, 1000, None)
    assert got[1] == PIPELINED  # nothing read past the final dot


def test_empty_message_and_smuggling_attempt() -> None:
    outcome, rest = run(b".\r\n" + PIPELINED)
    assert outcome == DataOutcome(content=b"") and rest == PIPELINED
    smuggle = b"Subject: a\r\n\r\nx\n.\nMAIL FROM:<evil@example.org>\r\n.\r\n"
    outcome, _ = run(smuggle)
    assert outcome.content == b"Subject: a\r\n\r\nx\n.\nMAIL FROM:<evil@example.org>\r\n"


def test_long_lines_and_large_data_are_refused_after_reading_to_the_end() -> None:
    long_line = b"x" * 2000 + b"\r\n"
    outcome, rest = run(b"ok\r\n" + long_line + b"ok\r\n.\r\n" + PIPELINED,
                        max_line=1000, limit=1000)
    assert outcome.problem is DataProblem.TOO_LONG_LINE and rest == PIPELINED
    exact = b"y" * 998 + b"\r\n"  # 1000 bytes with CRLF: allowed
    assert run(exact + b".\r\n", max_line=1000)[0].content == exact
    big = b"line of text\r\n" * 1000
    outcome, rest = run(big + b".\r\n" + PIPELINED, max_bytes=5000, chunk=997)
    assert outcome.problem is DataProblem.TOO_MUCH_DATA and rest == PIPELINED


def test_pieces_larger_than_the_reader_limit() -> None:
    body = b"".join(b"line %d without dots\r\n" % i for i in range(5000))  # ~110 KB, no dot
    outcome, rest = run(body + b".\r\n" + PIPELINED, max_line=1000, limit=1000, chunk=4096)
    assert outcome.content == body and rest == PIPELINED


def test_connection_closed_before_the_end() -> None:
    with pytest.raises(asyncio.IncompleteReadError):
        run(b"no end\r\n")


_TOKENS = st.sampled_from([b"a", b"b c", b".", b"..", b"\r", b"\n", b"\r\n", b"\r\n.",
                           b"\r\n..", b".\r\n", b"x" * 40])


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, max_size=60), st.integers(1, 23), st.sampled_from([None, 200]))
def test_random_streams_match_the_line_reader(tokens: list[bytes], chunk: int,
                                              max_bytes: int | None) -> None:
    stream = b"".join(tokens) + b"\r\n.\r\n" + PIPELINED
    expected, expected_rest = reference(stream, 120, max_bytes)
    got, rest = run(stream, max_line=120, max_bytes=max_bytes, limit=120, chunk=chunk)
    assert rest == expected_rest  # the same end: never reads past the final dot
    if expected.problem is None:
        assert got == expected
    else:  # refused either way; with both limits broken, which reply comes first may differ
        assert got.problem is not None and got.content == b""


@pytest.mark.parametrize("arg", [
    "<ann@example.org>", " <ann@example.org> SIZE=100 BODY=8BITMIME", "<a.b+c@sub.example.org>",
    "<>", "<\"quoted local\"@example.org>", "ann@example.org", "<ann@[192.0.2.1]>",
    "<@relay.example:ann@example.org>", "<ann..x@example.org>", "<.ann@example.org>",
    "<ann@example.org", "<Ann.O'Neil@example.org>", "<üser@example.org>", "",
])
def test_fast_address_parsing_agrees_with_aiosmtpd(arg: str) -> None:
    from aiosmtpd.smtp import SMTP

    from mailsift.interfaces.smtp.server import _Smtp

    class Handler:
        pass

    loop = asyncio.new_event_loop()  # aiosmtpd would make (and never close) one of its own
    try:
        ours = _Smtp(Handler(), xforward=False, loop=loop)
        theirs = SMTP(Handler(), loop=loop)
        assert ours._getaddr(arg) == theirs._getaddr(arg)
    finally:
        loop.close()
