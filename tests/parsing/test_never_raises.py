"""Parsing never raises on bytes (issue 18.2): charset names that are codecs without an error
handler (``idna``, ``punycode``), a NUL in a charset name, each with one 8-bit byte, in a body
part, an attachment and an RFC 2047 word. Each used to raise out of ``parse_message``."""

from __future__ import annotations

import pytest

from mailsift.config.schema import Settings
from mailsift.core.envelope import Envelope
from mailsift.parsing import parse_message
from mailsift.pipeline.build import build_pipeline

pytestmark = pytest.mark.timeout(30)

CHARSETS = ["idna", "punycode", "utf-8\x00x", "idna\x00", "rot13", "base64", "zlib"]


def _encoded_word(charset: str) -> bytes:
    # the smallest case of the issue: 105 bytes with charset idna
    return (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: =?" + charset.encode()
            + b"?q?h=E9llo?=\r\n\r\nhello\r\n")


def _body(charset: str) -> bytes:
    return (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: body\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: text/plain; charset="' + charset.encode() + b'"\r\n'
            b"Content-Transfer-Encoding: 8bit\r\n\r\nh\xe9llo\r\n")


def _attachment(charset: str) -> bytes:
    return (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: att\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
            b"Content-Type: text/plain\r\n\r\nsee attached\r\n--B\r\n"
            b'Content-Type: text/plain; charset="' + charset.encode() + b'"; name="a.txt"\r\n'
            b'Content-Disposition: attachment; filename="a.txt"\r\n'
            b"Content-Transfer-Encoding: 8bit\r\n\r\nh\xe9llo\r\n--B--\r\n")


def _rfc2231(charset: str) -> bytes:
    return (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: 2231\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset*=" + charset.encode() + b"''h%E9llo\r\n"
            b"\r\nh\xe9llo\r\n")


@pytest.mark.parametrize("build", [_encoded_word, _body, _attachment, _rfc2231])
@pytest.mark.parametrize("charset", CHARSETS, ids=lambda c: c.replace("\x00", "NUL"))
def test_security_charset_names_never_raise(build: object, charset: str) -> None:
    assert callable(build)
    raw = build(charset)
    msg = parse_message(raw)
    assert msg.from_addr is not None and msg.from_addr.addr == "a@example.org"


def test_security_the_105_byte_idna_subject_decodes_and_says_so() -> None:
    raw = _encoded_word("idna")
    assert len(raw) < 110
    msg = parse_message(raw)
    assert "llo" in msg.subject
    assert {c for c, _ in msg.defects} & {"PARSE_BAD_CHARSET_DATA", "PARSE_UNKNOWN_CHARSET"}


def test_a_message_the_parser_cannot_read_is_a_finding_and_a_verdict(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The last line of defence: whatever escapes the guards becomes PARSE_FAILED and the
    message still gets a verdict (never "clean")."""
    import mailsift.parsing.parser as parser

    def broken(*args: object) -> None:
        raise RuntimeError("a parser bug not found yet")

    monkeypatch.setattr(parser, "_decoded_headers", broken)
    msg = parse_message(_body("utf-8"))
    assert ("PARSE_FAILED", "RuntimeError: a parser bug not found yet") in msg.defects
    pipeline = build_pipeline(Settings.model_validate({"scan": {"offline": True}}))
    result = pipeline.scan(_body("utf-8"), Envelope(rcpt_to=("b@example.net",)))
    codes = {f.code for f in result.findings}
    assert "PARSE_FAILED" in codes
    assert "DETECTOR_ERROR" in codes  # precedence step 8: never "clean"
    verdict = result.verdict
    assert verdict.category.value != "clean" or verdict.decided_by.value == "8-detector-error"
    assert verdict.action.value != "deliver"
