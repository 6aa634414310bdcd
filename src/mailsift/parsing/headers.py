"""Header decoding and address parsing, hardened against hostile input.

Traps measured here: ``email.utils.getaddresses`` recurses once per nested comment, so a From
header with 10k nested parentheses raises RecursionError; unknown charsets in encoded words raise
LookupError; 8-bit header bytes arrive as surrogate escapes from the compat32 parser.
"""

from __future__ import annotations

import codecs
import email.utils
import re
from email.header import decode_header

from mailsift.core.message import Address

__all__ = [
    "decode_value",
    "from_surrogates",
    "parse_addresses",
    "safe_decode",
    "strip_comments",
    "unfold",
]

_MAX_COMMENT_DEPTH = 8
_ADDR_FALLBACK = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


def unfold(value: str) -> str:
    """Join folded lines: a line break before a space or tab goes (RFC 5322 unfolding), any
    other becomes a space, carriage returns go. Plain ``str.replace`` passes, three times
    faster than a regex on the ~10 folded headers of a message; a CR between the line feed
    and the blank does not make a fold (it is dropped only after the folds are found)."""
    return (value.replace("\n ", " ").replace("\n\t", "\t")
            .replace("\r", "").replace("\n", " "))


def _text_codec(name: str) -> str | None:
    """The codec called ``name`` if it decodes bytes to text, else None. ``codecs.lookup``
    raises ValueError (not LookupError) on a NUL in the name, and finds bytes-to-bytes codecs
    (``base64``, ``zlib``, ``rot13``) that ``bytes.decode`` refuses."""
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    return info.name if getattr(info, "_is_text_encoding", True) else None


def safe_decode(data: bytes, charset: str | None, defects: list[tuple[str, str]]) -> str:
    """Decode bytes with a declared charset; unknown or wrong charsets degrade, never raise.

    Every decode is guarded: codecs without error handlers (``idna``, ``punycode``) raise
    UnicodeError even with ``errors="replace"``, so the fallback is always UTF-8 with
    replacement, which cannot fail."""
    name = (charset or "utf-8").strip().strip('"').lower() or "utf-8"
    if name in ("unknown-8bit", "x-unknown", "unknown", "8bit", "default", "us-ascii", "ascii"):
        # us-ascii labels often hide 8-bit text; utf-8 decodes ascii identically.
        name = "utf-8"
    codec = _text_codec(name)
    if codec is None:
        defects.append(("PARSE_UNKNOWN_CHARSET", name[:64].replace("\x00", "\\x00")))
        codec = "utf-8"
    try:
        return data.decode(codec)
    except Exception:  # UnicodeDecodeError, and exotic codecs' own errors on hostile input
        pass
    if codec != "utf-8":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        if codec in ("idna", "punycode"):
            defects.append(("PARSE_BAD_CHARSET_DATA", codec))
            return data.decode("utf-8", errors="replace")
    try:
        return data.decode(codec, errors="replace")
    except Exception:
        defects.append(("PARSE_BAD_CHARSET_DATA", codec[:64]))
        return data.decode("utf-8", errors="replace")


def from_surrogates(value: str) -> str:
    """8-bit header bytes (surrogate-escaped by compat32) as UTF-8, else Latin-1."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "surrogateescape")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")


def decode_value(value: str, defects: list[tuple[str, str]]) -> str:
    """Unfold a raw header value and decode RFC 2047 encoded words."""
    if value.isascii() and "\n" not in value and "=?" not in value:
        return value.strip()  # the common case, measured: most headers need no work
    value = from_surrogates(unfold(value))
    if "=?" not in value:
        return value.strip()
    try:
        pieces = decode_header(value)
    except Exception:  # malformed encoded words: keep the raw text
        defects.append(("PARSE_BAD_ENCODED_WORD", value[:80]))
        return value.strip()
    out: list[str] = []
    for chunk, charset in pieces:
        if isinstance(chunk, str):
            out.append(chunk)
        else:
            out.append(safe_decode(chunk, charset, defects))
    return "".join(out).strip()


def strip_comments(value: str) -> str:
    """Remove RFC 5322 comments without recursion (quoted strings and escapes respected)."""
    out: list[str] = []
    depth = 0
    in_quote = False
    escaped = False
    for ch in value:
        if escaped:
            if depth == 0:
                out.append(ch)
            escaped = False
            continue
        if ch == "\\":
            escaped = True
            if depth == 0:
                out.append(ch)
            continue
        if in_quote:
            out.append(ch)
            if ch == '"':
                in_quote = False
            continue
        if ch == '"' and depth == 0:
            in_quote = True
            out.append(ch)
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth > 0:
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _comment_depth(value: str) -> int:
    depth = best = 0
    for ch in value:
        if ch == "(":
            depth += 1
            best = max(best, depth)
        elif ch == ")":
            depth = max(0, depth - 1)
    return best


# One mailbox in its plainest forms (``a@b.example``, ``Name <a@b.example>``, ``"Name" <...>``):
# most address headers are one of these, and the email package's parser takes long on each.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR_SPEC = rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_PLAIN_MAILBOX = re.compile(
    rf'\s*(?:"([^"\\\r\n]*)"\s*|([^\W_]+(?: [^\W_]+)*) ?)?<({_ADDR_SPEC})>\s*|\s*({_ADDR_SPEC})\s*')


def _plain_mailbox(value: str) -> Address | None:
    m = _PLAIN_MAILBOX.fullmatch(value)
    if m is None:
        return None
    quoted, words, angle, bare = m.groups()
    return Address(display_name=(quoted or words or "").strip(), addr=angle or bare)


def parse_addresses(value: str, defects: list[tuple[str, str]], header: str) -> tuple[Address, ...]:
    """Parse an address header into mailboxes; hostile values degrade to a regex fallback."""
    if not value:
        return ()
    plain = _plain_mailbox(value)
    if plain is not None:
        return (plain,)
    if "," in value:
        # A list of plain mailboxes (To/Cc of list mail); a comma inside a quoted name or a
        # comment leaves a piece that is not plain, and the email package parses the whole.
        listed = [_plain_mailbox(piece) for piece in value.split(",")]
        if all(listed):
            return tuple(a for a in listed if a is not None)
    if "(" in value and _comment_depth(value) > _MAX_COMMENT_DEPTH:
        defects.append(("PARSE_HEADER_NESTING", f"{header}: comments nested too deep"))
        value = strip_comments(value)
    try:
        pairs = email.utils.getaddresses([value])
    except (RecursionError, ValueError, IndexError, TypeError):
        defects.append(("PARSE_BAD_ADDRESS", f"{header}: {value[:80]}"))
        pairs = [("", m) for m in _ADDR_FALLBACK.findall(value)]
    out = []
    for name, addr in pairs:
        if not addr and not name:
            continue
        out.append(Address(display_name=name.strip(), addr=addr.strip()))
    return tuple(out)
