"""Address headers: the fast path for plain mailboxes gives what the email package gives."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsift.parsing.headers import parse_addresses


@pytest.mark.parametrize(("value", "expected"), [
    ("ann@example.org", (("", "ann@example.org"),)),
    ("Ann Smith <ann@example.org>", (("Ann Smith", "ann@example.org"),)),
    ('"Smith, Ann" <ann@example.org>', (("Smith, Ann", "ann@example.org"),)),
    ("Jürgen <j@example.de>", (("Jürgen", "j@example.de"),)),
    ("a@example.org, b@example.org", (("", "a@example.org"), ("", "b@example.org"))),
    ('Ann <a@example.org>,"Bob B" <b@example.org> , c@example.org',
     (("Ann", "a@example.org"), ("Bob B", "b@example.org"), ("", "c@example.org"))),
    ('"Smith, Ann" <ann@example.org>, b@example.org',
     (("Smith, Ann", "ann@example.org"), ("", "b@example.org"))),
    ("=?utf-8?q?Ann?= <ann@example.org>", (("=?utf-8?q?Ann?=", "ann@example.org"),)),
])
def test_mailboxes(value: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert tuple((a.display_name, a.addr) for a in parse_addresses(value, [], "from")) == expected


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["Ann", "O'Neil", "Jürgen", "J.", "x_y", "Ü", ",", "@", "\\\\",
                                 "(c)", '"', " ", "  ", "<", ">", "a@b.example", "ann@example.org",
                                 "a.b+c@sub.example.co.uk", "<ann@example.org>", "\t"]),
                max_size=8))
def test_the_fast_mailbox_path_agrees_with_the_email_package(parts: list[str]) -> None:
    value = "".join(parts)
    expected = tuple((n.strip(), a.strip()) for n, a in email.utils.getaddresses([value])
                     if n or a)
    got = tuple((a.display_name, a.addr) for a in parse_addresses(value, [], "from"))
    assert got == expected
