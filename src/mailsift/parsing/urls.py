"""URL extraction from text and normalisation into ``Url`` views.

Hosts are lower-cased, punycode is decoded for display (``punycode`` flag kept), IP literals in
any notation (dotted, decimal, hex) are recognised, and the registrable domain comes from the
public suffix list shipped offline by ``publicsuffixlist`` (no download at run time).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from functools import lru_cache
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

from mailsift.core.message import Url

__all__ = [
    "URL_IN_TEXT",
    "make_url",
    "public_suffix_list",
    "registrable_domain",
    "urls_in_text",
]

URL_IN_TEXT = re.compile(
    r"""(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>"'`{}|\\^\[\]]{2,2048}""",
    re.IGNORECASE,
)
#: Where a ``URL_IN_TEXT`` match can start, in lower-cased ASCII text: case-sensitive literals
#: without the leading word boundary let the regex engine skip ahead (see ``_url_matches``).
_URL_START = re.compile(r"https?://|ftp://|www\.")
_TRAILING = ".,;:!?)]}>'\"*"

_psl: PublicSuffixList | None = None


def public_suffix_list() -> PublicSuffixList:
    """The one parsed public suffix list of this process (parsing it costs ~130 ms)."""
    global _psl
    if _psl is None:
        _psl = PublicSuffixList()
    return _psl


@lru_cache(maxsize=16384)
def registrable_domain(host: str) -> str:
    """``mail.example.co.uk`` -> ``example.co.uk``; hosts that are a public suffix stay as given."""
    host = host.strip(".").lower()
    if not host or _ip_literal(host):
        return host
    try:
        found = public_suffix_list().privatesuffix(host)
    except Exception:  # the library rejects some hostile labels
        return host
    return found or host


def _ip_literal(host: str) -> bool:
    h = host.strip("[]")
    if ":" not in h and not h[:1].isdigit():
        # Every notation below starts with a digit (IPv4 dotted, decimal, hex "0x..."); IPv6
        # has a colon. Most hosts are names: skip ip_address raising ValueError for each.
        return False
    try:
        ipaddress.ip_address(h)
        return True
    except ValueError:
        pass
    # Browsers accept decimal (http://3232235777/) and hex (0xC0A80001) IPv4 notations.
    if re.fullmatch(r"(?:0x[0-9a-f]+|\d+)", h):
        return True
    return bool(re.fullmatch(r"(?:(?:0x[0-9a-f]+|\d+)\.){1,3}(?:0x[0-9a-f]+|\d+)", h))


@lru_cache(maxsize=16384)
def _host_view(raw_host: str) -> tuple[str, bool]:
    host = raw_host.strip().strip(".").lower()
    punycode = False
    if "xn--" in host:
        labels = []
        for label in host.split("."):
            if label.startswith("xn--"):
                try:
                    label = label[4:].encode("ascii").decode("punycode")
                    punycode = True
                except (UnicodeError, ValueError):
                    pass
            labels.append(label)
        host = ".".join(labels)
    elif not host.isascii():
        punycode = True  # a raw IDN host is shown as Unicode but travels as punycode
    return host, punycode


def make_url(text: str, source: str = "text", display_text: str = "") -> Url | None:
    """Normalise one link; ``None`` for things that are not web/ftp/mail links."""
    text = text.strip().strip("\x00")
    if not text:
        return None
    candidate = text
    if candidate.lower().startswith("www."):
        candidate = "http://" + candidate
    if candidate.startswith("//"):
        candidate = "http:" + candidate
    try:
        parts = urlsplit(candidate)
        netloc = parts.netloc
        scheme = parts.scheme.lower()
    except ValueError:
        return None
    if scheme not in ("http", "https", "ftp"):
        return None
    userinfo = "@" in netloc
    hostport = netloc.rsplit("@", 1)[-1]
    if hostport.startswith("["):
        raw_host = hostport[1 : hostport.find("]")] if "]" in hostport else hostport[1:]
    else:
        raw_host = hostport.split(":", 1)[0]
    host, punycode = _host_view(raw_host.replace("\\", ""))
    if not host:
        return None
    is_ip = _ip_literal(host)
    return Url(
        url=text[:2048],
        scheme=scheme,
        host=host,
        domain=host if is_ip else registrable_domain(host),
        source=source,
        display_text=display_text[:300],
        is_ip=is_ip,
        punycode=punycode,
        has_userinfo=userinfo,
    )


def _url_matches(text: str) -> Iterator[re.Match[str]]:
    """``URL_IN_TEXT.finditer(text)``. For ASCII text the case-insensitive scan, which tries
    every position, is replaced by a case-sensitive scan of the lower-cased text (same offsets)
    for where a match can start; ``URL_IN_TEXT.match`` at each such position decides (its word
    boundary sees the character before ``pos``), and the scan resumes where a match ended, as
    finditer does."""
    if not text.isascii():
        yield from URL_IN_TEXT.finditer(text)
        return
    lowered = text.lower()
    pos = 0
    while (start := _URL_START.search(lowered, pos)) is not None:
        found = URL_IN_TEXT.match(text, start.start())
        if found is None:
            pos = start.start() + 1
            continue
        yield found
        pos = found.end()


def urls_in_text(text: str, source: str, limit: int,
                 skip: frozenset[str] | set[str] = frozenset()) -> list[Url]:
    """URLs written out in ``text``; ``skip`` holds URLs already known (not parsed again)."""
    out: list[Url] = []
    if "://" not in text and "www." not in text and "WWW." not in text:
        return out
    for match in _url_matches(text):
        raw = match.group(0).rstrip(_TRAILING)
        if raw in skip:
            continue
        found = make_url(raw, source)
        if found is not None:
            out.append(found)
            if len(out) >= limit:
                break
    return out
