"""The relay to the next hop, against a real SMTP server (aiosmtpd sink on loopback)."""

from __future__ import annotations

import asyncio

import pytest

from mailsift.delivery.relay import Relay, RelayOutcome, smtp_path
from mailsift.testing.sink import SmtpSink

ASCII = b"From: a@example.org\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"
EIGHT_BIT = "From: a@example.org\r\nSubject: caf\u00e9\r\n\r\nd\u00e9j\u00e0 vu\r\n".encode()


def _send(sink: SmtpSink, *messages: tuple[bytes, str, list[str]]) -> list[RelayOutcome]:
    async def run() -> list[RelayOutcome]:
        async with Relay(sink.host, sink.port, timeout=10) as relay:
            return [await relay.send(raw, sender, rcpts) for raw, sender, rcpts in messages]
    return asyncio.run(run())


def test_addresses_go_through_verbatim() -> None:
    with SmtpSink() as sink:
        out = _send(sink, (ASCII, "", ["b@example.com", '"john doe"@example.com']))
        assert sink.wait_for(1)
    assert out[0].accepted == ("b@example.com", '"john doe"@example.com')
    got = sink.messages[0]
    assert got.mail_from == "<>" and got.rcpt_to == ("b@example.com", '"john doe"@example.com')
    assert got.mail_options == ()


def test_the_first_8bit_message_of_a_session_is_declared() -> None:
    # EHLO runs when the session opens, so BODY=8BITMIME is known for the very first message.
    with SmtpSink() as sink:
        _send(sink, (EIGHT_BIT, "a@example.org", ["b@example.com"]),
              (ASCII, "a@example.org", ["b@example.com"]))
        assert sink.wait_for(2)
    first, second = sink.messages
    assert first.mail_options == ("BODY=8BITMIME",) and first.data == EIGHT_BIT
    assert second.mail_options == ()


def test_utf8_addresses_are_relayed_with_smtputf8() -> None:
    sender, rcpt = "d\u00e9j\u00e0@exampl\u00e9.org", "\u7528\u6237@\u4f8b\u5b50.example"
    with SmtpSink() as sink:
        out = _send(sink, (EIGHT_BIT, sender, [rcpt]))
        assert sink.wait_for(1)
    assert out[0].accepted == (rcpt,)
    got = sink.messages[0]
    assert (got.mail_from, got.rcpt_to) == (sender, (rcpt,))
    assert "SMTPUTF8" in got.mail_options


def test_utf8_addresses_to_a_next_hop_without_smtputf8_are_refused_for_good() -> None:
    with SmtpSink(smtputf8=False) as sink:
        out = _send(sink, (ASCII, "d\u00e9j\u00e0@example.org", ["b@example.com"]))
        assert len(sink) == 0
    assert out[0].accepted == () and out[0].refused["b@example.com"].startswith("553 5.6.7")


@pytest.mark.parametrize("bad", ["b@example.com> NOTIFY=NEVER", "b@example.com\r\nRSET",
                                 "<b@example.com>", "b @example.com"])
def test_an_address_that_could_smuggle_a_command_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        smtp_path(bad)
    with SmtpSink() as sink:
        out = _send(sink, (ASCII, "a@example.org", [bad, "ok@example.com"]),
                    (ASCII, bad, ["ok@example.com"]))
        assert sink.wait_for(1)
    assert out[0].accepted == ("ok@example.com",) and out[0].refused[bad].startswith("553")
    assert out[1].accepted == () and out[1].refused["ok@example.com"].startswith("553 5.1.7")
    assert [m.rcpt_to for m in sink.messages] == [("ok@example.com",)]


def test_refused_recipient_and_sender_replies_are_passed_on() -> None:
    with SmtpSink() as sink:
        sink.refuse.add("gone@example.com")
        out = _send(sink, (ASCII, "a@example.org", ["gone@example.com", "b@example.com"]),
                    (ASCII, "a@example.org", ["gone@example.com"]))
        assert sink.wait_for(1)
    assert out[0].accepted == ("b@example.com",)
    assert out[0].refused == {"gone@example.com": "550 5.1.1 no such user"}
    assert out[1].accepted == () and out[1].reply == "no recipient accepted"
