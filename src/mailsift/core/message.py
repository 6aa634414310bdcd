"""The parsed view of a message that every detector reads.

Parsing (``mailsift.parsing``) builds these once per message; they are immutable so detectors can
run in any order (or in parallel) without stepping on each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from mailsift.core.state import compact_state

__all__ = ["SUMMARY_HEADERS", "Address", "Attachment", "MimePart", "ParsedMessage", "Url"]

_EMPTY: Mapping[str, tuple[str, ...]] = MappingProxyType({})


@compact_state
@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox from an address header: ``"Display Name" <local@domain>``."""

    display_name: str
    addr: str

    @property
    def local(self) -> str:
        return self.addr.rsplit("@", 1)[0] if "@" in self.addr else self.addr

    @property
    def domain(self) -> str:
        return self.addr.rsplit("@", 1)[1].lower() if "@" in self.addr else ""


@compact_state
@dataclass(frozen=True, slots=True)
class Url:
    """A link found in the message.

    ``source`` says where it came from (``text``, ``href``, ``form``, ``img``, ``area``); for HTML
    anchors ``display_text`` keeps what the reader saw next to where the link really goes.
    ``host`` is lower-cased and IDNA-decoded to Unicode when it was punycode; ``domain`` is the
    registrable domain (public-suffix aware) or the IP literal.
    """

    url: str
    scheme: str
    host: str
    domain: str
    source: str = "text"
    display_text: str = ""
    is_ip: bool = False
    punycode: bool = False
    has_userinfo: bool = False


@compact_state
@dataclass(frozen=True, slots=True)
class Attachment:
    """A file carried by the message (or found inside an archive attachment).

    ``declared_type`` is what the MIME header claims, ``detected_type`` what the bytes are (magic
    numbers). ``container`` names the archive it was found in, if any.
    """

    filename: str
    declared_type: str
    detected_type: str
    size: int
    sha256: str
    content: bytes = field(repr=False, default=b"")
    inline: bool = False
    container: str = ""
    depth: int = 0
    encrypted: bool = False


@compact_state
@dataclass(frozen=True, slots=True)
class MimePart:
    """Structure of one MIME part, for structural checks and explanations."""

    content_type: str
    depth: int
    size: int
    charset: str = ""
    transfer_encoding: str = ""
    filename: str = ""
    disposition: str = ""


#: The headers a slimmed message keeps: what trace, lists and the console show of a message.
SUMMARY_HEADERS = frozenset({"from", "sender", "reply-to", "to", "cc", "subject", "date",
                             "message-id"})


@compact_state
@dataclass(frozen=True, slots=True, eq=False)
class ParsedMessage:
    """Everything detectors read about one message.

    ``headers`` keeps every header in order with RFC 2047 words decoded; ``header_index`` maps the
    lower-cased name to its values. ``text`` is the concatenated text/plain content, ``html`` the
    raw HTML and ``html_text`` that HTML rendered to text. ``defects`` are parse problems as finding
    codes (``PARSE_*``) with evidence, which the parse detector reports.
    """

    raw: bytes = field(repr=False)
    headers: tuple[tuple[str, str], ...] = ()
    header_index: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _EMPTY, repr=False)
    from_addr: Address | None = None
    from_addrs: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    sender: Address | None = None
    subject: str = ""
    message_id: str = ""
    date: str = ""
    text: str = field(default="", repr=False)
    html: str = field(default="", repr=False)
    html_text: str = field(default="", repr=False)
    urls: tuple[Url, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    parts: tuple[MimePart, ...] = ()
    embedded: tuple[ParsedMessage, ...] = ()
    defects: tuple[tuple[str, str], ...] = ()
    truncated: bool = False
    original_size: int = -1

    @property
    def size(self) -> int:
        return self.original_size if self.original_size >= 0 else len(self.raw)

    def header(self, name: str) -> tuple[str, ...]:
        """All values of header ``name`` (case-insensitive), in order."""
        return self.header_index.get(name.lower(), ())

    def first_header(self, name: str, default: str = "") -> str:
        values = self.header_index.get(name.lower())
        return values[0] if values else default

    @property
    def body_text(self) -> str:
        """What a reader sees: plain text parts, or the rendered HTML when there are none."""
        if self.text.strip():
            return self.text
        return self.html_text

    @property
    def from_domain(self) -> str:
        return self.from_addr.domain if self.from_addr else ""

    def slim(self) -> ParsedMessage:
        """A copy without bodies, attachment contents and all but the summary headers, cheap to
        send between processes (addresses, URLs and attachment metadata stay). The scan
        workers return this; the raw message stays with whoever holds it."""
        headers = tuple((n, v) for n, v in self.headers if n.lower() in SUMMARY_HEADERS)
        index: dict[str, tuple[str, ...]] = {}
        for name, value in headers:
            index[name.lower()] = (*index.get(name.lower(), ()), value)
        return replace(
            self, raw=b"", text="", html="", html_text="", embedded=(), original_size=self.size,
            attachments=tuple(replace(a, content=b"") for a in self.attachments),
            headers=headers, header_index=MappingProxyType(index),
        )
