"""What a matcher looks at: header pseudo-fields and the per-message views, built lazily.

A ``MessageView`` is made once per message and caches each view the first time a rule asks for
it, so a pack without ``raw`` rules never decodes the raw bytes and a message without URLs
skips every ``uri`` rule. Views that are lists (URLs, hosts, attachment names, several values
of one header) are joined with newlines and searched once, with ``^``/``$`` anchoring per item.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from operator import itemgetter
from typing import Any

from mailsift.core.message import Address, ParsedMessage
from mailsift.rules.patterns import fold

__all__ = [
    "ADDRESS_HEADERS",
    "HEADER_PARTS",
    "MessageView",
    "parse_header_field",
    "registrable_domain",
]

#: Address headers whose ``:addr``, ``:name`` and ``:domain`` parts exist.
ADDRESS_HEADERS = ("from", "reply-to", "to", "cc", "sender", "return-path")
HEADER_PARTS = ("addr", "name", "domain")
_FIELD_NAME = re.compile(r"^[!-9;-~]+$")
_ANGLE_ADDR = re.compile(r"<([^<>\s]*)>")
_VALUE = itemgetter(1)  # of the automaton's (end offset, literal) pairs


def parse_header_field(spec: str) -> tuple[str, str]:
    """``"From:domain"`` -> ``("from", "domain")``; ``"ALL"`` -> ``("ALL", "")``.

    Raises ``ValueError`` for a malformed name or a part that the header does not have.
    """
    if spec == "ALL":
        return "ALL", ""
    name, _, part = spec.partition(":")
    if not name or not _FIELD_NAME.match(name):
        raise ValueError(f"bad header field {spec!r}")
    lowered = name.lower()
    if part:
        if part not in HEADER_PARTS:
            raise ValueError(
                f"unknown header pseudo-field {spec!r} (parts: {', '.join(HEADER_PARTS)})"
            )
        if lowered not in ADDRESS_HEADERS:
            raise ValueError(
                f"header pseudo-field {spec!r}: :{part} exists only for "
                + ", ".join(ADDRESS_HEADERS)
            )
    return lowered, part


@lru_cache(maxsize=16384)
def registrable_domain(host: str) -> str:
    """The organisational domain (public suffix list, shipped offline); IPs stay as given."""
    host = host.strip(".").lower()
    if not host or host.replace(".", "").isdigit() or ":" in host:
        return host
    try:
        found = _psl().privatesuffix(host)
    except Exception:  # the library rejects some hostile labels; compare them as given
        return host
    return str(found) if found else host


def _psl() -> Any:
    from mailsift.parsing.urls import public_suffix_list

    return public_suffix_list()


class MessageView:
    """Lazily built, cached text views of one ``ParsedMessage`` for matchers and checks."""

    __slots__ = (
        "_cache", "_candidates", "_folded", "_prefilters", "_present", "max_body", "max_raw", "msg"
    )

    def __init__(self, msg: ParsedMessage, max_raw: int = 256 * 1024,
                 prefilters: Mapping[str, Any] | None = None,
                 max_body: int = 128 * 1024) -> None:
        self.msg = msg
        self.max_raw = max_raw
        self.max_body = max_body
        self._prefilters = prefilters or {}
        self._candidates: dict[str, frozenset[int]] = {}
        self._cache: dict[str, str] = {}
        self._present: dict[str, frozenset[str]] = {}
        self._folded: dict[str, str] = {}

    def text(self, key: str) -> str:
        """The view named ``key`` (a pattern kind, or ``h:<name>:<part>`` for a header)."""
        value = self._cache.get(key)
        if value is None:
            value = self._build(key)
            self._cache[key] = value
        return value

    def folded(self, key: str) -> str:
        """``fold`` of view ``key``: same length as the view, so offsets carry over."""
        value = self._folded.get(key)
        if value is None:
            value = fold(self.text(key))
            self._folded[key] = value
        return value

    def present(self, key: str) -> frozenset[str]:
        """Which prefilter literals of view ``key`` occur in it (one Aho-Corasick pass)."""
        found = self._present.get(key)
        if found is None:
            prefilter = self._prefilters.get(key)
            text = self.text(key)
            if prefilter is None or prefilter.automaton is None or not text:
                found = frozenset()
            else:
                automaton = prefilter.automaton
                found = frozenset(map(_VALUE, automaton.iter(self.folded(key))))
            self._present[key] = found
        return found

    def candidates(self, key: str) -> frozenset[int]:
        """Ids of the regex parts of view ``key`` whose key literal occurs in it."""
        found = self._candidates.get(key)
        if found is None:
            prefilter = self._prefilters.get(key)
            found = prefilter.candidates(self.present(key)) if prefilter else frozenset()
            self._candidates[key] = found
        return found

    def _build(self, key: str) -> str:
        msg = self.msg
        limit = self.max_body
        if key == "body":
            # Whitespace collapsed so phrases match across line breaks and HTML layout; each
            # part bounded (lures sit at the top, long tails are logs and quoted threads).
            return " ".join(f"{msg.text[:limit]} {msg.html_text[:limit]}".split())
        if key == "rawbody":
            text = msg.text[:limit]
            return f"{text}\n{msg.html[:limit]}" if msg.html else text
        if key == "html":
            return msg.html[:limit]
        if key == "raw":
            return msg.raw[: self.max_raw].decode("latin-1")
        if key == "uri":
            return "\n".join(u.url for u in msg.urls)
        if key == "uri_host":
            return "\n".join(dict.fromkeys(u.host for u in msg.urls if u.host))
        if key == "attachment_name":
            return "\n".join(a.filename for a in msg.attachments if a.filename)
        if key == "attachment_type":
            types = (t for a in msg.attachments for t in (a.declared_type, a.detected_type) if t)
            return "\n".join(dict.fromkeys(types))
        if key.startswith("h:"):
            name, _, part = key[2:].partition(":")
            return self._header(name, part)
        raise KeyError(key)

    def _header(self, name: str, part: str) -> str:
        msg = self.msg
        if name == "ALL":
            return "\n".join(f"{k}: {v}" for k, v in msg.headers)
        if not part:
            return "\n".join(msg.header(name))
        addresses = self.addresses(name)
        if part == "addr":
            return "\n".join(a.addr for a in addresses if a.addr)
        if part == "name":
            return "\n".join(a.display_name for a in addresses if a.display_name)
        return "\n".join(dict.fromkeys(a.domain for a in addresses if a.domain))

    def addresses(self, name: str) -> tuple[Address, ...]:
        """Parsed addresses of an address header (lower-cased name)."""
        msg = self.msg
        if name == "from":
            return msg.from_addrs or ((msg.from_addr,) if msg.from_addr else ())
        if name == "reply-to":
            return msg.reply_to
        if name == "to":
            return msg.to
        if name == "cc":
            return msg.cc
        if name == "sender":
            return (msg.sender,) if msg.sender else ()
        if name == "return-path":
            # Return-Path is "<addr>" by RFC 5321; no full address parser needed (or wanted:
            # hostile comment nesting is what breaks the stdlib one).
            found = (_ANGLE_ADDR.search(v) for v in msg.header("return-path"))
            return tuple(Address("", m.group(1)) for m in found if m and m.group(1))
        return ()
