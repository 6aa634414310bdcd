"""Header edits on raw bytes: the header block split, stripping without copying."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsift.delivery.headers import (
    MAILSIFT_HEADER,
    _fold,
    add_headers,
    mailsift_header,
    split_header_block,
    strip_headers,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"A: 1", b" cont", b"\r\n", b"\n", b"\r", b"body"]),
                max_size=30))
def test_header_block_split_finds_the_first_empty_line(parts: list[bytes]) -> None:
    raw = b"".join(parts)
    match = re.search(rb"\r?\n\r?\n", raw)  # the definition: the first empty line
    if match is None:
        assert split_header_block(raw) == (raw, b"", b"")
    else:
        eol = raw.find(b"\n", match.start())
        assert split_header_block(raw) == (raw[:eol + 1], raw[eol + 1:match.end()],
                                           raw[match.end():])


def test_strip_headers_drops_fields_with_continuations_and_keeps_the_body() -> None:
    raw = b"X-Drop: a\r\n b\r\nSubject: s\r\n\r\nX-Drop: in the body\r\n"
    assert strip_headers(raw, lambda name, _: name == "x-drop") == \
        b"Subject: s\r\n\r\nX-Drop: in the body\r\n"
    assert strip_headers(raw, lambda name, _: False) is raw  # nothing dropped: no copy


def test_added_headers_follow_the_message_line_ending() -> None:
    assert add_headers(b"Subject: s\n\nbody\n", [("X-A", "1")]) == b"X-A: 1\nSubject: s\n\nbody\n"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"X-Mailsift-Score: 1", b"x-MAILSIFT-ref: 2", b" X-Mailsift-A: 3",
                                 b"Subject: x-mailsift-", b"A: 1", b" cont", b"\r\n", b"\n",
                                 b"\r", b"body"]), max_size=30))
def test_the_prefilter_never_changes_what_is_stripped(parts: list[bytes]) -> None:
    raw = b"".join(parts)
    assert strip_headers(raw, mailsift_header, only_if=MAILSIFT_HEADER) == \
        strip_headers(raw, mailsift_header)


def test_without_our_headers_the_message_is_returned_unsplit() -> None:
    raw = b"Subject: s\r\n\r\nX-Mailsift-Score: in the body only\r\n"
    assert strip_headers(raw, mailsift_header, only_if=MAILSIFT_HEADER) is raw


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["X-Mailsift-Ref", "Authentication-Results", "X"]),
       st.lists(st.sampled_from(["a", "b", " ", "\t", "\u00e9", ";", "=" * 5, "x" * 30]),
                max_size=20).map("".join))
def test_a_short_value_folds_the_same_on_the_fast_path(name: str, value: str) -> None:
    # A trailing space always takes the long way, which must give the same header.
    for eol in (b"\r\n", b"\n"):
        assert _fold(name, value, eol) == _fold(name, value + " ", eol)
