"""The sender's view of a message: what the model may learn from.

A model trained on real corpora learns whatever separates the corpora, and the cheapest separator
is the *mailbox* a message was collected in: most phish here came through one honeypot's Exchange
tenant (``X-MS-*``, its Authentication-Results), all list ham through a handful of list servers
(``List-*``, subject tags, footers) and one final receiver. None of that is the threat. So before
any feature is computed we remove what the receiving side added:

* receiver-added headers (trace, authentication results of the final receiver, ARC, Exchange and
  Gmail stamps, spam-filter verdicts, envelope copies, list-server headers);
* what a list server adds to the content: the ``[list]`` subject tag, the footer, and links to the
  list's own pages;
* the recipient: every address and local part of the envelope/To/Cc recipients is masked, so
  "Dear phishing" (the honeypot's address) teaches nothing.

DKIM and authentication results are deliberately not features at all: many corpus messages were
redacted after delivery, so their signatures fail for reasons that have nothing to do with phish.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from mailsift.core.message import ParsedMessage, Url

__all__ = [
    "RECEIVER_HEADERS",
    "RECEIVER_HEADER_PREFIXES",
    "SenderView",
    "is_receiver_header",
    "sender_view",
]

#: Header names added on the receiving side (exact, lower-case).
RECEIVER_HEADERS = frozenset({
    "received", "x-received", "authentication-results", "received-spf", "delivered-to",
    "x-original-to", "return-path", "envelope-to", "x-envelope-from", "x-envelope-to",
    "x-rcpt-to", "x-apparently-to", "x-greylist", "x-virus-scanned", "x-virus-status",
    "x-beenthere", "precedence", "errors-to", "x-original-sender", "x-original-from",
    "mailing-list", "x-sender-ip", "x-sid-pra", "x-sid-result", "x-message-delivery",
    "x-message-info", "x-incomingtopheadermarker", "x-incomingheadercount",
    "x-eopattributedmessage", "x-eoptenantattributedmessage", "x-uidl", "status", "x-status",
    "x-keywords", "lines",
    "content-length", "x-spam-status", "x-spam-score", "x-spam-level", "x-spam-flag",
    "x-forwarded-to", "x-forwarded-for", "x-forwarded-encrypted", "x-gm-message-state",
    "x-mailman-version", "x-mailman-approved-at", "x-scanned-by", "x-loop", "bcc",
})
#: Header-name prefixes of receiver-side stamps (Exchange Online, Gmail, filters, ARC, lists).
RECEIVER_HEADER_PREFIXES = ("x-ms-", "x-microsoft-", "x-forefront-", "x-exchange-", "x-eop",
                            "arc-", "list-", "x-spam", "x-google-", "x-gm-", "x-mailman-",
                            "x-proofpoint-", "x-mimecast-", "x-barracuda-", "x-ironport-",
                            "x-antiabuse", "x-amavis", "x-virus", "x-original-", "x-resent-",
                            "resent-", "x-mailgun-", "x-groupsio-", "x-cmae-", "x-tmase-",
                            "x-auth", "x-ses-")

_LIST_TAG = re.compile(r"^\s*((re|fwd?|aw)\s*:\s*)*\[[^\]\n]{1,60}\]\s*", re.IGNORECASE)
#: Lines where list-server footers start (Mailman, Google Groups, groups.io, mlmmj, SourceForge).
_FOOTER_START = re.compile(
    r"^(_{20,}\s*$|-=-=-=-=|--\s*\nYou received this message because you are subscribed"
    r"|-- ?\n[^\n]{1,80} mailing list\s*\n"
    r"|You received this message because you are subscribed to the Google Groups"
    r"|Groups\.io Links:|To unsubscribe from this group)",
    re.MULTILINE,
)
_ADDR = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_URL_IN_HEADER = re.compile(r"<(https?://[^>]+)>", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def is_receiver_header(name: str) -> bool:
    low = name.lower()
    return low in RECEIVER_HEADERS or low.startswith(RECEIVER_HEADER_PREFIXES)


@dataclass(frozen=True, slots=True)
class SenderView:
    """What the sender wrote, with the receiving side's additions removed and recipients masked.

    ``headers`` keeps only sender-side headers (original order); ``urls`` drops links to the
    list server's own pages; ``body`` may be cut to a length limit, ``body_chars`` is the length
    of the whole body (footer removed). ``recipient_in_subject`` says a recipient's address or
    local part was masked out of the subject (lures name the mailbox they target).
    """

    headers: tuple[tuple[str, str], ...]
    subject: str
    body: str
    urls: tuple[Url, ...]
    list_mail: bool
    body_chars: int = 0
    recipient_in_subject: bool = False


def _list_hosts(msg: ParsedMessage) -> set[str]:
    hosts: set[str] = set()
    for name in ("list-unsubscribe", "list-archive", "list-help", "list-post", "list-subscribe",
                 "list-owner"):
        for value in msg.header(name):
            for url in _URL_IN_HEADER.findall(value):
                host = url.split("//", 1)[1].split("/", 1)[0].split(":", 1)[0].lower()
                hosts.add(host)
    return hosts


_FOOTER_MAX = 800


def _strip_footer(body: str) -> str:
    # A list footer is short and last: cut at the first marker that leaves only a short tail,
    # so a separator line in the middle of a long message is not mistaken for one.
    # Only the tail is searched: a 500 kB body costs no more than a short one.
    match = _FOOTER_START.search(body, max(0, len(body) - _FOOTER_MAX))
    return body[:match.start()] if match is not None else body


def _recipients(msg: ParsedMessage, extra: Iterable[str]) -> tuple[set[str], set[str]]:
    addrs = {a.lower() for a in extra if "@" in a}
    for a in (*msg.to, *msg.cc):
        if a.addr:
            addrs.add(a.addr.lower())
    for name in ("delivered-to", "x-original-to", "envelope-to"):
        for value in msg.header(name):
            for m in _ADDR.finditer(value):
                addrs.add(m.group(0).lower())
    locals_ = {a.split("@", 1)[0] for a in addrs}
    return addrs, {p for p in locals_ if len(p) >= 3}


@functools.lru_cache(maxsize=1024)
def _mask_pattern(addrs: tuple[str, ...], local_parts: tuple[str, ...]) -> re.Pattern[str]:
    # One pass: whole addresses first (longest first), then bare local parts as whole words.
    # Cached because a gateway sees the same recipients over and over.
    alternatives = [re.escape(a) for a in addrs]
    if local_parts:
        alternatives.append(r"\b(?:" + "|".join(re.escape(p) for p in local_parts) + r")\b")
    return re.compile("|".join(alternatives), re.IGNORECASE)


def mask_recipients(text: str, addrs: set[str], local_parts: set[str]) -> str:
    if not text or not (addrs or local_parts):
        return text
    low = text.lower()
    present_addrs = tuple(sorted((a for a in addrs if a in low), key=lambda a: (-len(a), a)))
    present_locals = tuple(sorted((p for p in local_parts if p in low),
                                  key=lambda p: (-len(p), p)))
    if not present_addrs and not present_locals:
        return text  # the common case: nothing to mask, no regex work
    return _mask_pattern(present_addrs, present_locals).sub(" ", text)


def sender_view(msg: ParsedMessage, recipients: Iterable[str] = (), max_body: int = 0
                ) -> SenderView:
    """Build the sender's view; ``recipients`` are envelope recipients (RCPT TO), if known.
    ``max_body`` > 0 keeps only that many body characters (cut before masking: cheaper)."""
    list_mail = bool(msg.header("list-id") or msg.header("list-unsubscribe")
                     or msg.header("mailing-list") or msg.header("x-beenthere"))
    headers = tuple((n, v) for n, v in msg.headers if not is_receiver_header(n))
    subject = msg.subject
    body = msg.body_text
    urls = msg.urls
    if list_mail:
        subject = _LIST_TAG.sub(lambda m: m.group(1) or "", subject, count=1)
        body = _strip_footer(body)
        hosts = _list_hosts(msg)
        if hosts:
            urls = tuple(u for u in urls if u.host not in hosts)
    body_chars = len(body)
    if max_body:
        body = body[:max_body]
    addrs, local_parts = _recipients(msg, recipients)
    masked_subject = mask_recipients(subject, addrs, local_parts)
    return SenderView(
        headers=headers,
        subject=masked_subject,
        body=mask_recipients(body, addrs, local_parts),
        urls=tuple(u for u in urls if not any(a in u.url.lower() for a in addrs)),
        list_mail=list_mail,
        body_chars=body_chars,
        recipient_in_subject=masked_subject != subject,
    )
