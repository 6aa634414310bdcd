"""Feature extraction: ParsedMessage -> named features, identical at training and scan time.

Features are plain strings with a value, grouped by prefix so an admin can read an explanation:

* ``s:`` subject words, ``w:`` body words (HTML rendered to text), ``b:`` body word pairs;
* ``ud:`` registrable domains of links, ``uh:`` link hosts, ``up:`` link path words,
  ``ed:`` domains of addresses written in the body, ``fd:`` the From domain's suffix;
* ``x:`` structure and header anomalies (parts, attachment types, HTML/text ratio, link tricks).

Everything is computed on the :mod:`~mailsift.ml.receiver` sender view, so receiver-added headers
cannot reach the model. Digits are folded to ``0`` (years and ticket numbers identify a corpus's
era, not a threat). Only the first ``MAX_BODY_CHARS`` of the body are read: the budget is well
under a millisecond per message and the opening of a message carries its intent.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable

from mailsift.core.message import ParsedMessage
from mailsift.ml.receiver import SenderView, sender_view

__all__ = ["FEATURE_VERSION", "MAX_BODY_CHARS", "extract", "extract_view"]

#: Bumped whenever extraction changes; a model records it and refuses a mismatch.
FEATURE_VERSION = "1"
MAX_BODY_CHARS = 8_000
_MAX_PAIRS = 300
_MAX_TOKEN = 30

_WORD = re.compile(r"[^\W_]{2,30}")
_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")
_LOG_VALUE = [0.0] + [1.0 + math.log(n) for n in range(1, 64)]
_EMAIL = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
_PATH_WORD = re.compile(r"[a-z]{3,20}")
_EXEC_EXT = frozenset({"exe", "scr", "js", "jse", "vbs", "vbe", "bat", "cmd", "com", "pif", "hta",
                       "wsf", "lnk", "iso", "img", "msi", "ps1", "jar"})
_DOC_EXT = frozenset({"doc", "docm", "xls", "xlsm", "xlsb", "ppt", "pptm", "rtf", "pdf", "htm",
                      "html", "shtml", "svg"})
_ARCHIVE_EXT = frozenset({"zip", "rar", "7z", "gz", "tar", "cab", "ace", "arj", "z"})


def _bucket(n: float) -> str:
    """A coarse log2 bucket: counts matter by order of magnitude, not exactly."""
    return str(min(int(math.log2(n + 1)), 12))


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().translate(_DIGITS_TO_ZERO))


def _ext(filename: str) -> str:
    return filename.rsplit(".", 1)[1].lower()[:8] if "." in filename else ""


def _structure(msg: ParsedMessage, view: SenderView, out: Counter[str]) -> None:
    out[f"x:parts{_bucket(len(msg.parts))}"] += 1
    has_text, has_html = bool(msg.text.strip()), bool(msg.html.strip())
    if has_html and not has_text:
        out["x:html_only"] += 1
    elif has_text and not has_html:
        out["x:text_only"] += 1
    if has_html:
        ratio = len(msg.html_text) / max(len(msg.html), 1)
        out[f"x:html_text_ratio{min(int(ratio * 10), 9)}"] += 1
    body = view.body
    out[f"x:body_len{_bucket(view.body_chars // 64)}"] += 1
    if len(body.strip()) < 40:
        out["x:body_empty"] += 1
    for att in msg.attachments:
        ext = _ext(att.filename)
        out[f"x:att_ext:{ext or 'none'}"] += 1
        if ext in _EXEC_EXT:
            out["x:att_exec"] += 1
        elif ext in _DOC_EXT:
            out["x:att_doc"] += 1
        elif ext in _ARCHIVE_EXT:
            out["x:att_archive"] += 1
        if att.detected_type and att.declared_type and \
                att.detected_type.split("/")[0] != att.declared_type.split("/")[0]:
            out["x:att_type_mismatch"] += 1
        if att.encrypted:
            out["x:att_encrypted"] += 1
    if msg.attachments:
        out[f"x:att_count{_bucket(len(msg.attachments))}"] += 1
    names = {n.lower() for n, _ in view.headers}
    for required in ("message-id", "date", "mime-version"):
        if required not in names:
            out[f"x:no_{required}"] += 1
    if msg.from_addr is not None:
        display = msg.from_addr.display_name
        for m in _EMAIL.finditer(display):
            if m.group(1).lower() != msg.from_addr.domain:
                out["x:display_addr_mismatch"] += 1
        tld = msg.from_addr.domain.rsplit(".", 1)[-1][:12]
        out[f"fd:{tld}"] += 1
        if msg.reply_to and all(r.domain != msg.from_addr.domain for r in msg.reply_to):
            out["x:reply_to_other_domain"] += 1
        msgid_domain = msg.message_id.rsplit("@", 1)[-1].strip("<> ").lower()
        if msgid_domain and not msgid_domain.endswith(msg.from_addr.domain.split(".", 1)[-1]):
            out["x:msgid_other_domain"] += 1
    else:
        out["x:no_from"] += 1
    mailer = " ".join(v for n, v in view.headers if n.lower() in ("x-mailer", "user-agent"))
    if mailer:
        first = _WORD.findall(mailer.lower())
        out[f"x:mailer:{first[0] if first else 'other'}"] += 1


def _urls(view: SenderView, out: Counter[str]) -> None:
    urls = view.urls
    out[f"x:urls{_bucket(len(urls))}"] += 1
    domains = set()
    for u in urls[:200]:
        domains.add(u.domain)
        out[f"ud:{u.domain[:_MAX_TOKEN]}"] += 1
        out[f"uh:{u.host[:_MAX_TOKEN]}"] += 1
        if u.is_ip:
            out["x:url_ip"] += 1
        if u.punycode:
            out["x:url_punycode"] += 1
        if u.has_userinfo:
            out["x:url_userinfo"] += 1
        if u.scheme == "http":
            out["x:url_http"] += 1
        if u.source == "form":
            out["x:form_action"] += 1
        shown = u.display_text.strip().lower()
        if shown and ("." in shown and " " not in shown) and u.domain and u.domain not in shown:
            out["x:url_text_mismatch"] += 1
        path = u.url.split("//", 1)[-1].partition("/")[2].lower()
        for word in _PATH_WORD.findall(path)[:8]:
            out[f"up:{word}"] += 1
    if domains:
        out[f"x:url_domains{_bucket(len(domains))}"] += 1


def extract_view(msg: ParsedMessage, view: SenderView) -> dict[str, float]:
    """Named features with their values (1 + log count), before any model vocabulary."""
    counts: Counter[str] = Counter()
    subject_words = _words(view.subject)
    counts.update("s:" + w for w in subject_words)
    if not subject_words:
        counts["x:no_subject"] += 1
    body = view.body[:MAX_BODY_CHARS]
    words = _words(body)
    counts.update("w:" + w for w in words)
    counts.update(f"b:{a}_{b}" for a, b in itertools.pairwise(words[:_MAX_PAIRS]))
    counts.update("ed:" + d.lower()[:_MAX_TOKEN] for d in _EMAIL.findall(body)[:50])
    _urls(view, counts)
    _structure(msg, view, counts)
    table = _LOG_VALUE
    return {name: table[n] if n < 64 else 1.0 + math.log(n) for name, n in counts.items()}


def extract(msg: ParsedMessage, recipients: Iterable[str] = ()) -> dict[str, float]:
    """Features of ``msg`` as the sender wrote it (:func:`~mailsift.ml.receiver.sender_view`)."""
    return extract_view(msg, sender_view(msg, recipients, MAX_BODY_CHARS))
