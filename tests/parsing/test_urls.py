"""URL scanning: the skip-ahead scan finds exactly what ``URL_IN_TEXT.finditer`` finds."""

from __future__ import annotations

import ipaddress
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsift.parsing.urls import URL_IN_TEXT, _ip_literal, _url_matches

_PIECES = ["http://", "HTTPS://", "hTtp://", "ftp://", "www.", "WWW.", "wWw.", "xhttp://", "a",
           "b.c", " ", "\n", "/", "<", ">", "'", "_", "1", ".", "é", "\u017f", "://", "w", "h"]


@settings(max_examples=800, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=16))
def test_url_scan_agrees_with_finditer(parts: list[str]) -> None:
    text = "".join(parts)
    expected = [(m.span(), m.group()) for m in URL_IN_TEXT.finditer(text)]
    assert [(m.span(), m.group()) for m in _url_matches(text)] == expected


def _ip_literal_slow(host: str) -> bool:
    h = host.strip("[]")
    try:
        ipaddress.ip_address(h)
        return True
    except ValueError:
        pass
    if re.fullmatch(r"(?:0x[0-9a-f]+|\d+)", h):
        return True
    return bool(re.fullmatch(r"(?:(?:0x[0-9a-f]+|\d+)\.){1,3}(?:0x[0-9a-f]+|\d+)", h))


@pytest.mark.parametrize("host", ["example.org", "192.0.2.1", "[::1]", "fe80::1%eth0",
                                  "3232235777", "0x7f.1", "0xc0a80001", "1.2.3.4.5", "",
                                  "\u0663.\u0663", "x1.example"])
def test_ip_literal(host: str) -> None:
    assert _ip_literal(host) == _ip_literal_slow(host)


@settings(max_examples=800, deadline=None)
@given(st.text(alphabet="01xaf.:[]%g\u0663\u00b2", max_size=12))
def test_ip_literal_shortcut_agrees(host: str) -> None:
    assert _ip_literal(host) == _ip_literal_slow(host)
