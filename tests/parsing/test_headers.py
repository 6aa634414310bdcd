"""Header helpers: the string-method unfolding does what the RFC 5322 regex did."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsift.parsing.headers import from_surrogates, unfold

_FOLD = re.compile(r"\r?\n(?=[ \t])")


def _unfold_by_regex(value: str) -> str:
    return _FOLD.sub("", value).replace("\r", "").replace("\n", " ")


@settings(max_examples=800, deadline=None)
@given(st.lists(st.sampled_from(["a", "\r", "\n", " ", "\t", "\r\n", "\r\n\t", "b c"]),
                max_size=16))
def test_unfold_agrees_with_the_fold_regex(parts: list[str]) -> None:
    value = "".join(parts)
    assert unfold(value) == _unfold_by_regex(value)


def test_unfold_keeps_the_blank_of_a_fold() -> None:
    # "\n\r " is no fold (a CR sits between): its line break becomes a blank of its own
    assert unfold("a\r\n\tb\n c\r\nd\n\r e") == "a\tb c d  e"
    assert _unfold_by_regex("a\r\n\tb\n c\r\nd\n\r e") == "a\tb c d  e"


def test_from_surrogates_ascii_and_eight_bit() -> None:
    assert from_surrogates("plain") == "plain"
    assert from_surrogates(b"J\xc3\xbcrgen".decode("ascii", "surrogateescape")) == "Jürgen"
    assert from_surrogates(b"J\xfcrgen".decode("ascii", "surrogateescape")) == "Jürgen"
