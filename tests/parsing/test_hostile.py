"""Named security tests for hostile MIME: each must finish (timeout guards a hang, it is not a
performance target) and degrade to PARSE_* defects rather than crash."""

from __future__ import annotations

import io
import zipfile

import pytest

from mailsift.config.schema import Settings
from mailsift.core.verdict import Action
from mailsift.parsing import parse_message
from mailsift.pipeline.build import build_pipeline
from mailsift.testing.messages import zip_archive

pytestmark = pytest.mark.timeout(30)


def codes(raw: bytes) -> set[str]:
    return {code for code, _ in parse_message(raw).defects}


def test_security_mime_nesting_1000_deep() -> None:
    raw = b"From: a@example.org\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
    for i in range(1000):
        raw += b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
    raw += b"Content-Type: text/plain\r\n\r\nhello\r\n"
    for i in reversed(range(1000)):
        raw += b"--b%d--\r\n" % i
    msg = parse_message(raw)
    assert "PARSE_DEPTH_LIMIT" in {c for c, _ in msg.defects}
    assert msg.subject == "deep"
    assert max(p.depth for p in msg.parts) <= 21


def test_security_100k_parts() -> None:
    body = b"".join(b"--x\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i
                    for i in range(100_000))
    raw = (b"From: a@example.org\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=x\r\n\r\n" + body + b"--x--\r\n")
    msg = parse_message(raw)
    assert "PARSE_PARTS_LIMIT" in {c for c, _ in msg.defects}
    assert len(msg.parts) <= 501


def test_security_10mb_header_line() -> None:
    raw = (b"From: a@example.org\r\nX-Huge: " + b"A" * 10_000_000
           + b"\r\nSubject: ok\r\n\r\nbody\r\n")
    msg = parse_message(raw)
    assert "PARSE_HEADER_TOO_LONG" in {c for c, _ in msg.defects}
    assert len(msg.first_header("X-Huge")) <= 128 * 1024
    assert msg.subject == "ok"


def test_security_from_with_10k_nested_parentheses() -> None:
    raw = (b"From: " + b"(" * 10_000 + b"x" + b")" * 10_000 + b" <evil@example.org>\r\n"
           b"Subject: parens\r\n\r\nbody\r\n")
    msg = parse_message(raw)
    assert "PARSE_HEADER_NESTING" in {c for c, _ in msg.defects}
    assert msg.from_addr is not None and msg.from_addr.addr == "evil@example.org"


def test_security_nul_bytes() -> None:
    raw = b"From: a@example.org\r\nSubject: n\x00ul\r\n\r\nbo\x00dy\r\n"
    assert "PARSE_NUL_BYTES" in codes(raw)


def test_security_unknown_charsets() -> None:
    raw = (b"From: =?x-klingon?q?abc?= <a@example.org>\r\nSubject: =?bogus-8?b?SGVsbG8=?=\r\n"
           b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nhello \xff\xfe\r\n")
    msg = parse_message(raw)
    assert "PARSE_UNKNOWN_CHARSET" in {c for c, _ in msg.defects}
    assert "hello" in msg.text


def test_security_zip_bomb_attachment() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", b"\x00" * (200 * 1024 * 1024))
    from mailsift.testing.messages import make_message

    raw = make_message(attachments=[("bomb.zip", buf.getvalue(), "application/zip")])
    assert len(raw) < 2 * 1024 * 1024
    msg = parse_message(raw)
    assert "PARSE_ARCHIVE_BOMB" in {c for c, _ in msg.defects}
    member = next(a for a in msg.attachments if a.filename == "zeros.bin")
    assert member.content == b""  # never inflated


def test_security_zip_with_lying_size_header() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.txt", b"B" * 5_000_000)
    data = bytearray(buf.getvalue())
    central = data.find(b"PK\x01\x02")
    data[central + 24:central + 28] = (10).to_bytes(4, "little")  # claims 10 bytes
    from mailsift.testing.messages import make_message

    msg = parse_message(make_message(attachments=[("lie.zip", bytes(data), "application/zip")]))
    # issue 18.8: zipfile stops at the declared size and fails the CRC ("corrupt"); a header
    # that lies about the size is a bomb in disguise
    found = {c for c, _ in msg.defects}
    assert "PARSE_ARCHIVE_BOMB" in found and "PARSE_ARCHIVE_CORRUPT" not in found


def test_security_hostile_structure_gets_a_safe_verdict() -> None:
    raw = b"From: a@example.org\r\nMIME-Version: 1.0\r\n"
    for i in range(1000):
        raw += b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
    pipeline = build_pipeline(Settings.model_validate({"detectors": {"enabled": ["parse"]}}))
    result = pipeline.scan(raw)
    assert result.verdict.action is Action.REJECT
    assert result.verdict.decided_by.value == "0-guardrail"


@pytest.mark.timeout(20)
def test_security_html_nested_100k_deep_is_bounded() -> None:
    """Issue 18.6: ~100k nested ``<div>`` (a 510 KB message) parsed for over 30 s outside any
    time budget; the worker was killed and the message deferred for ever. The tree builder is
    quadratic in the nesting, so tags beyond the depth limit are dropped (text and links kept)."""
    import time

    html = ("<html><body>" + "<div>" * 100_000 + "<a href='http://evil.example/x'>sign in</a>"
            + "</div>" * 100_000 + "</body></html>")
    raw = (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/html\r\n\r\n" + html.encode() + b"\r\n")
    started = time.perf_counter()
    msg = parse_message(raw)
    assert time.perf_counter() - started < 5
    assert "PARSE_HTML_DEPTH" in {c for c, _ in msg.defects}
    assert "sign in" in msg.html_text
    assert [u.url for u in msg.urls if "evil" in u.url] == ["http://evil.example/x"]


EXE = b"MZ\x90\x00" + b"\x00" * 60 + b"PE\x00\x00"


def _nested(depth: int) -> bytes:
    data = zip_archive([("invoice.exe", EXE)])
    for level in range(depth - 1):
        data = zip_archive([(f"invoice{level}.zip", data)])
    return data


def _verdict_of(archive: bytes) -> tuple[str, set[str]]:
    from mailsift.testing.messages import make_message

    raw = make_message(subject="Invoice", text="Please find the invoice attached.\n",
                       attachments=[("invoice.zip", archive, "application/zip")])
    pipeline = build_pipeline(Settings.model_validate({"scan": {"offline": True}}))
    result = pipeline.scan(raw)
    return result.verdict.category.value, {f.code for f in result.findings}


@pytest.mark.parametrize("depth", [3, 4])
def test_security_exe_in_zips_nested_past_the_limit_is_malware(depth: int) -> None:
    """Issue 18.8: an .exe in zips nested 4 deep (one past max_archive_depth) came out clean."""
    category, found = _verdict_of(_nested(depth))
    assert category == "malware"
    assert "ATT_BLOCKED_TYPE" in found


def test_security_zips_nested_10_deep_are_not_clean() -> None:
    category, found = _verdict_of(_nested(10))
    assert "ATT_ARCHIVE_DEPTH" in found
    assert category == "malware"


def test_security_exe_as_the_1001st_member_is_malware() -> None:
    members = [(f"page{i}.txt", b"x") for i in range(1000)] + [("invoice.exe", EXE)]
    category, found = _verdict_of(zip_archive(members))
    assert {"ATT_BLOCKED_TYPE", "ATT_ARCHIVE_LIMIT"} <= found
    assert category == "malware"
