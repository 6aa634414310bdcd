"""Technique features (``h:``, ``ha:``, ``x:``, ``l:``): *how* a message tries to deceive.

Words drift with the era and the language; techniques are re-used for years. Each feature here
is a publicly documented phishing or spam technique, computed from what the sender wrote:

* ``h:`` tricks in the HTML body that mail never needs: decoding hidden content (``atob``,
  ``unescape``, ``fromCharCode``, ``document.write``), ``data:`` documents, meta refresh,
  password fields;
* ``ha:`` the same, plus any script, redirect, form, iframe or hidden text, inside attached
  HTML/SVG files (credential-harvest and redirect pages sent as attachments, HTML smuggling);
* ``x:`` letters hidden from word filters (combining marks threaded through letters,
  zero-width characters inside words, "fancy" mathematical or enclosed letters), a From header
  that splits into several mailboxes, a free trial tenant as sender (``*.onmicrosoft.com``),
  a well-known brand in the display name but not in the address;
* ``l:`` links to raw cloud storage (an uploaded HTML page under a cloud provider's name),
  public form and document services, IPFS.

Left out on purpose, although they are techniques too: habits that legitimate bulk mail shares
(scripts and forms in old newsletters, hidden preheader text, pictographs in subjects, pictures
on image hosts or CDNs, toll-free numbers in receipts, numbered sender addresses). Measured as
model features they mostly taught "modern HTML mail", which in this corpus is legitimate brand
mail more often than threat (docs/model-card.md, "What was tried").

Cost: substring tests on the lower-cased HTML (first ``MAX_HTML`` characters, only when a
marker character is present), a few bounded regular expressions on short strings.
"""

from __future__ import annotations

import re
from collections import Counter

from mailsift.core.message import Attachment, ParsedMessage, Url
from mailsift.ml.lexicon import BRANDS, CLOUD_STORAGE, FORM_HOSTS, FREE_TENANTS

__all__ = ["MAX_HTML", "html_tricks", "link_hosting", "obfuscation", "sender_shape"]

MAX_HTML = 200_000
_MAX_ATTACHMENT = 200_000
_HTML_ATTACHMENT = frozenset({"htm", "html", "shtml", "xhtml", "svg", "mht", "mhtml"})

#: (feature, substrings of lower-cased HTML; any one present fires it). Body and attachments.
_BODY_MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("js_decode", ("atob(", "unescape(", "fromcharcode", "decodeuricomponent(", "eval(",
                   "document.write(")),
    ("data_document", ("data:text/html", "data:application/", "data:image/svg")),
)
#: Only in attached HTML files: a page meant for a browser, where these are the whole point.
_ATTACHMENT_MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    *_BODY_MARKERS,
    ("script", ("<script",)),
    ("js_redirect", ("window.location", "location.href", "location.replace", "document.location",
                     "location.assign", "window.open(")),
    ("iframe", ("<iframe",)),
    ("input", ("<input",)),
    ("form", ("<form",)),
    ("hidden", ("display:none", "display: none", "visibility:hidden", "visibility: hidden")),
)
_META_REFRESH = re.compile(r"<meta[^>]{0,200}?http-equiv\s*=\s*[\"']?refresh")
_PASSWORD = re.compile(r"<input[^>]{0,300}?type\s*=\s*[\"']?password")

#: Combining marks threaded through Latin letters ("S͎a͎v͎i͎n͎g͎s͎"): word filters no longer see
#: the word, a reader still does. Precomposed accents (NFC, as mail is written) never match.
_COMBINING = re.compile(r"[A-Za-z][\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff"
                        r"\u20d0-\u20ff\ufe20-\ufe2f]")
#: Invisible characters inside a word ("Pay\u200bPal"): splits a word for filters only.
_ZERO_WIDTH = re.compile(r"[A-Za-z][\u200b-\u200d\u2060\ufeff\u00ad\u034f]+[A-Za-z]")
#: Mathematical alphanumerics, enclosed and squared letters, full-width Latin.
_FANCY = re.compile(r"[\U0001d400-\U0001d7ff\u24b6-\u24e9\U0001f130-\U0001f189"
                    r"\uff21-\uff3a\uff41-\uff5a]")
_WORD = re.compile(r"[^\W\d_]{2,30}")


def _markers(low: str, prefix: str, markers: tuple[tuple[str, tuple[str, ...]], ...],
             out: Counter[str]) -> None:
    for name, subs in markers:
        if any(s in low for s in subs):
            out[prefix + name] += 1
    if "refresh" in low and _META_REFRESH.search(low):
        out[prefix + "meta_refresh"] += 1
    if "password" in low and _PASSWORD.search(low):
        out[prefix + "password"] += 1


def _html_attachment(att: Attachment) -> bool:
    name = att.filename.lower()
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    return ext in _HTML_ATTACHMENT or att.declared_type in ("text/html", "image/svg+xml")


def html_tricks(msg: ParsedMessage, out: Counter[str]) -> None:
    """``h:`` markers of the HTML body and ``ha:`` markers of attached HTML/SVG files."""
    if msg.html:
        _markers(msg.html[:MAX_HTML].lower(), "h:", _BODY_MARKERS, out)
    seen = 0
    for att in msg.attachments:
        if seen >= 3 or not att.content or not _html_attachment(att):
            continue
        seen += 1
        page = att.content[:_MAX_ATTACHMENT].decode("latin-1").lower()
        _markers(page, "ha:", _ATTACHMENT_MARKERS, out)


def obfuscation(subject: str, display: str, body: str, out: Counter[str]) -> None:
    """Letters hidden from word filters: combining marks, zero-width characters, fancy
    letters, in the subject, the From name or the body."""
    head = subject + "\n" + display
    if not head.isascii():
        if len(_COMBINING.findall(head)) >= 3:
            out["x:combining_marks"] += 1
        if _ZERO_WIDTH.search(head):
            out["x:zero_width"] += 1
        if _FANCY.search(head):
            out["x:fancy_letters"] += 1
    if not body.isascii():
        if len(_COMBINING.findall(body)) >= 5:
            out["x:combining_marks_body"] += 1
        if _ZERO_WIDTH.search(body):
            out["x:zero_width_body"] += 1


def sender_shape(msg: ParsedMessage, out: Counter[str]) -> None:
    """A From header split into several mailboxes, a free trial tenant as sender, a brand
    borrowed by the display name."""
    sender = msg.from_addr
    if sender is None:
        return
    if len(msg.from_addrs) >= 2:
        # "Microsoft, <x@attacker.example>": an unquoted comma turns one display name into a
        # list of mailboxes; clients differ in which one they show
        out["x:from_several"] += 1
    domain = sender.domain
    if domain and _under(domain, FREE_TENANTS):
        out["x:from_free_tenant"] += 1

    named = [w for w in _WORD.findall(sender.display_name.lower()) if w in BRANDS]
    if named and not any(w in sender.addr.lower() for w in named):
        # "Microsoft 365 Team" <alerts@unrelated.example>: the name is borrowed. (The brand's
        # own domain is no evidence either way: the 2004-2005 phish forged it outright.)
        out["x:dn_brand_foreign"] += 1


def _under(host: str, domains: frozenset[str]) -> bool:
    """``host`` is one of ``domains`` or below one (one set look-up per label)."""
    labels = host.split(".")
    return any(".".join(labels[i:]) in domains for i in range(len(labels) - 1))


def _bucket(host: str) -> bool:
    if host.startswith("objectstorage."):
        return True
    if not _under(host, CLOUD_STORAGE):
        return False
    # amazonaws.com also serves APIs and EC2 hosts: only S3 names are buckets
    return not host.endswith("amazonaws.com") or ".s3" in host or host.startswith("s3")


def link_hosting(urls: tuple[Url, ...], out: Counter[str]) -> None:
    """Where links lead (``l:``): raw cloud storage, public forms and documents, IPFS."""
    for u in urls[:200]:
        if u.source == "img":
            continue
        host = u.host
        path = u.url.split("//", 1)[-1].partition("/")[2].lower()
        if _bucket(host):
            out["l:cloud_storage"] += 1
            if ".htm" in path or ".php" in path or ".svg" in path:
                out["l:cloud_storage_page"] += 1
        elif _under(host, FORM_HOSTS):
            out["l:form_host"] += 1
        if "ipfs" in host or path.startswith(("ipfs/", "ipns/")):
            out["l:ipfs"] += 1
