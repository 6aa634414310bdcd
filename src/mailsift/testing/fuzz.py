"""MIME mutation for fuzzing: seed messages and mutations that go where parsers break.

Shared by the fuzz test in CI (hypothesis draws the seed and the mutations, bounded in time)
and ``bench/fuzz.py`` (a seeded ``random.Random`` over 100,000 inputs). The mutations are
not random bytes alone: most inputs must stay mail-shaped to reach the decoders, so they
splice hostile tokens where the crashes of issue 18 came from (charset names, RFC 2047 words,
RFC 2231 parameters, boundaries, nesting, archives, HTML) next to plain byte flips, cuts and
duplications.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from mailsift.testing.messages import make_message, zip_archive

__all__ = ["MUTATIONS", "mutate", "seeds"]

#: charset names that broke decoding, plus names of codecs that are not text codecs
CHARSETS = (b"idna", b"punycode", b"utf-8\x00", b"\x00", b"base64", b"rot13", b"zlib",
            b"utf-7", b"utf-16", b"utf-32-be", b"cp1252", b"x-unknown", b"", b"'", b'"',
            b"iso-2022-jp", b"unicode-escape", b"raw-unicode-escape", b"hex", b"uu")
TOKENS = (
    b"=?idna?q?h=E9llo?=", b"=?punycode?b?aOls?=", b"=?utf-8\x00?q?x=FF?=", b"=?x?q?=?=",
    b"=?utf-8?b?====?=", b"=?utf-7?q?+AGE-?=", b"charset*=idna''h%E9", b"filename*0*=x''%FF",
    b"\x00", b"\xe9", b"\xff\xfe", b"\r\n\r\n", b"\r\n--B\r\n", b"\r\n--B--\r\n", b"((((((((",
    b"<" * 40, b"boundary=\"B\"", b"Content-Type: multipart/mixed; boundary=B\r\n",
    b"Content-Transfer-Encoding: base64\r\n", b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Transfer-Encoding: x-uuencode\r\n", b"begin 644 x.exe\r\n", b"=\r\n", b"=F",
    b"<div>" * 64, b"<a href=\"http://xn--80ak6aa92e.com/\">paypal.com</a>", b"&#x10FFFF;",
    b"\xed\xa0\x80", b"Content-Type: message/rfc822\r\n\r\n",
)


def seeds() -> list[bytes]:
    """Mail-shaped starting points: text, HTML, multipart with attachments, an archive, encoded
    words and 8-bit bodies."""
    exe = b"MZ\x90\x00" + b"\x00" * 60 + b"PE\x00\x00"
    nested = zip_archive([("inner.zip", zip_archive([("run.exe", exe)]))])
    return [
        make_message(subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?=", text="Hallo, wie geht's?\n"),
        make_message(subject="Invoice", html="<p>Pay <a href='http://192.0.2.1/x'>here</a>"
                     "</p><form action='http://192.0.2.1/c'><input type=password></form>"),
        make_message(subject="Report", text="See attached.\n",
                     attachments=[("report.zip", nested, "application/zip"),
                                  ("notes.txt", "caf\u00e9\n".encode(), "text/plain")]),
        (b"From: =?iso-8859-1?q?J=F6rg?= <j@example.de>\r\nTo: b@example.net\r\n"
         b"Subject: caf\xe9\r\nMIME-Version: 1.0\r\n"
         b'Content-Type: multipart/alternative; boundary="B"\r\n\r\n--B\r\n'
         b"Content-Type: text/plain; charset=iso-8859-1\r\n"
         b"Content-Transfer-Encoding: quoted-printable\r\n\r\nsch=F6n\r\n--B\r\n"
         b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
         b"<html><body><div><b>sch\xc3\xb6n</b></div></body></html>\r\n--B--\r\n"),
        (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
         b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
         b"Content-Type: message/rfc822\r\n\r\nFrom: c@example.com\r\nSubject: inner\r\n\r\n"
         b"inner body\r\n--B\r\nContent-Type: application/octet-stream; name=x.bin\r\n"
         b"Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA//8AALgAAAA=\r\n--B--\r\n"),
    ]


Mutation = Callable[[bytes, random.Random], bytes]


def _pos(data: bytes, rng: random.Random) -> int:
    return rng.randrange(len(data) + 1)


def _flip(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]


def _insert_token(data: bytes, rng: random.Random) -> bytes:
    i = _pos(data, rng)
    return data[:i] + rng.choice(TOKENS) + data[i:]


def _swap_charset(data: bytes, rng: random.Random) -> bytes:
    """Replace a declared charset (body part or encoded word) by a hostile name."""
    lowered = data.lower()
    name = rng.choice(CHARSETS)
    for marker in (b"charset=", b"=?"):
        at = lowered.find(marker, rng.randrange(len(data) + 1) // 2)
        if at < 0:
            at = lowered.find(marker)
        if at >= 0:
            start = at + len(marker)
            end = start
            while end < len(data) and data[end:end + 1] not in b"?;\r\n \"":
                end += 1
            return data[:start] + name + data[end:]
    return data


def _add_8bit(data: bytes, rng: random.Random) -> bytes:
    i = _pos(data, rng)
    return data[:i] + bytes([rng.randrange(0x80, 0x100)]) + data[i:]


def _cut(data: bytes, rng: random.Random) -> bytes:
    return data[:_pos(data, rng)]


def _duplicate(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    j = min(len(data), i + rng.randrange(1, 200))
    return data[:j] + data[i:j] * rng.randrange(1, 20) + data[j:]


def _nest(data: bytes, rng: random.Random) -> bytes:
    """Deep nesting of one kind: multipart, HTML elements or comments."""
    depth = rng.choice((10, 100, 1000, 5000))
    kind = rng.randrange(3)
    if kind == 0:
        head = b"".join(b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (k, k)
                        for k in range(depth))
        return data.split(b"\r\n\r\n", 1)[0] + b"\r\nMIME-Version: 1.0\r\n" + head + \
            b"Content-Type: text/plain\r\n\r\nx\r\n"
    if kind == 1:
        html = b"<div>" * depth + b"deep" + b"</div>" * rng.randrange(depth)
        return data + b"\r\n--B\r\nContent-Type: text/html\r\n\r\n" + html + b"\r\n--B--\r\n"
    i = data.find(b"From:")
    return data[:i + 5] + b"(" * depth + data[i + 5:] if i >= 0 else data


def _header_garbage(data: bytes, rng: random.Random) -> bytes:
    name = rng.choice((b"Subject", b"From", b"To", b"Content-Type", b"Content-Disposition",
                       b"Received", b"Authentication-Results", b"DKIM-Signature", b"X-\xff"))
    value = b" ".join(rng.choice(TOKENS) for _ in range(rng.randrange(1, 6)))
    return name + b": " + value + b"\r\n" + data


MUTATIONS: tuple[Mutation, ...] = (_flip, _insert_token, _swap_charset, _add_8bit, _cut,
                                   _duplicate, _nest, _header_garbage)


def mutate(seed: bytes, rng: random.Random, rounds: int | None = None) -> bytes:
    """Apply 1-6 (or ``rounds``) mutations chosen by ``rng`` to ``seed``."""
    data = seed
    for _ in range(rounds if rounds is not None else rng.randrange(1, 7)):
        data = rng.choice(MUTATIONS)(data, rng)
    return data
